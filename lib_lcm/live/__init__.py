"""The live page (``python -m lib_lcm live``): the picture follows the prompt, the sketch or the webcam.

``engine`` turns a stream of requests into a stream of pictures, newest first and never out of order; it
is pure Python (the render is a callable it is given), so other front ends can embed it. ``render`` maps a
request onto the standalone pipeline, ``images`` converts pictures to and from data URLs, ``server`` is the
local HTTP server and ``page/`` the page it serves.
"""
