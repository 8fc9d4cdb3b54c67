"""The toy world in which LCM-LoRA is reproduced offline on a CPU: digits, an autoencoder, a judge,
a teacher and its distilled LCM-LoRA (``weights/``), the evaluation table and the demo."""
