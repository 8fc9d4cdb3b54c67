// The live page: every change sends the whole state as one request; the server renders only the newest,
// and this page paints a picture only when it is newer than the one shown (ids rise with each request).
"use strict";

(() => {
  const DEBOUNCE_MS = 100; // typing: wait for a short pause instead of sending every key
  const RETRY_MS = 1000; // the server is gone (stopped, restarting): ask again after this
  const $ = (id) => document.getElementById(id);
  const state = { config: null, timer: 0, submitted: 0, painted: 0, hasImage: false, camera: null };

  async function start() {
    const answer = await fetch("/config");
    state.config = await answer.json();
    setUpControls(state.config);
    setUpSketch(state.config);
    setUpWebcam();
    poll();
    send();
  }

  // --- controls -------------------------------------------------------------------------------------

  function setUpControls(config) {
    $("model").textContent = `${config.model} · ${config.width}×${config.height}`;
    const steps = $("steps");
    steps.min = config.steps.minimum;
    steps.max = config.steps.maximum;
    steps.value = config.steps.default;
    $("seed").max = config.seeds - 1;
    $("seed").value = Math.floor(Math.random() * 1e6);
    $("strength").value = config.strength;
    config.styles.forEach((style, index) => $("styles").append(styleSlider(style, index)));
    for (const id of ["prompt", "steps", "strength", "seed-lock"]) $(id).addEventListener("input", schedule);
    $("seed").addEventListener("input", () => { $("seed-lock").checked = true; schedule(); });
    document.querySelectorAll("input[type=range]").forEach(showValue);
  }

  function styleSlider(style, index) {
    const row = document.createElement("div");
    row.className = "row";
    const label = document.createElement("label");
    label.htmlFor = `style-${index}`;
    label.textContent = `${style.name} `;
    const value = document.createElement("output");
    value.id = `style-${index}-value`;
    label.append(value);
    const slider = document.createElement("input");
    Object.assign(slider, { id: `style-${index}`, type: "range", min: style.minimum, max: style.maximum, step: 0.05 });
    slider.value = style.weight;
    slider.dataset.style = index;
    slider.addEventListener("input", schedule);
    row.append(label, slider);
    return row;
  }

  function showValue(slider) {
    const output = $(`${slider.id}-value`);
    if (!output) return;
    const update = () => { output.textContent = slider.value; };
    slider.addEventListener("input", update);
    update();
  }

  function request() {
    const locked = $("seed-lock").checked;
    return {
      prompt: $("prompt").value,
      steps: Number($("steps").value),
      seed: locked ? Number($("seed").value) : -1, // -1: the server picks a new seed
      strength: Number($("strength").value),
      styles: [...document.querySelectorAll("input[data-style]")].map((s) => Number(s.value)),
      image: state.hasImage ? $("sketch").toDataURL("image/jpeg", 0.9) : null,
    };
  }

  // --- requests and pictures ----------------------------------------------------------------------

  function schedule() {
    clearTimeout(state.timer);
    state.timer = setTimeout(send, DEBOUNCE_MS);
  }

  async function send() {
    clearTimeout(state.timer);
    try {
      const answer = await fetch("/request", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(request()),
      });
      const body = await answer.json();
      if (!answer.ok) return say(body.error, true);
      state.submitted = Math.max(state.submitted, body.id);
    } catch (error) {
      say(`The server did not answer (${error.message}).`, true);
    }
  }

  async function poll() {
    for (;;) {
      try {
        const answer = await fetch(`/frame?after=${state.painted}`);
        if (answer.status === 200) paint(await answer.json());
        else if (answer.status !== 204) throw new Error(`HTTP ${answer.status}`);
      } catch (error) {
        say("Waiting for the server…", true);
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    }
  }

  function paint(frame) {
    if (frame.id <= state.painted) return; // never an older picture over a newer one
    state.painted = frame.id;
    $("fps").textContent = frame.fps ? frame.fps.toFixed(1) : "–";
    $("ms").textContent = String(frame.ms);
    $("mode").textContent = frame.mode;
    if (state.camera) captureCamera(); // the next webcam frame, even after an error
    if (frame.error) return say(frame.error, true);
    const picture = $("picture");
    picture.src = frame.image;
    Object.assign(picture.dataset, { frame: frame.id, prompt: frame.prompt, seed: frame.seed, mode: frame.mode });
    picture.classList.toggle("behind", frame.id < state.submitted); // newer requests are still on their way
    $("seed-used").textContent = String(frame.seed);
    if (!$("seed-lock").checked) $("seed").value = frame.seed; // lock it to keep this picture's seed
    say(frame.note || "", false);
  }

  function say(text, isError) {
    $("status").textContent = text || "";
    $("status").classList.toggle("error", Boolean(isError));
  }

  // --- the image to start from: sketch, upload, webcam ----------------------------------------------

  function setUpSketch(config) {
    const canvas = $("sketch");
    canvas.width = config.width;
    canvas.height = config.height;
    canvas.style.aspectRatio = `${config.width} / ${config.height}`;
    $("picture").style.aspectRatio = canvas.style.aspectRatio;
    clearSketch();
    let last = null;
    canvas.addEventListener("pointerdown", (event) => {
      canvas.setPointerCapture(event.pointerId);
      last = point(canvas, event);
      stroke(canvas, last, last);
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!last) return;
      const next = point(canvas, event);
      stroke(canvas, last, next);
      last = next;
    });
    for (const end of ["pointerup", "pointercancel"]) canvas.addEventListener(end, () => { last = null; });
    $("clear").addEventListener("click", () => { stopCamera(); clearSketch(); schedule(); });
    $("upload").addEventListener("change", upload);
  }

  function point(canvas, event) {
    const box = canvas.getBoundingClientRect();
    return { x: (event.clientX - box.left) * canvas.width / box.width,
             y: (event.clientY - box.top) * canvas.height / box.height };
  }

  function stroke(canvas, from, to) {
    const context = canvas.getContext("2d");
    Object.assign(context, { strokeStyle: $("colour").value, lineCap: "round", lineJoin: "round",
                             lineWidth: Number($("brush").value) * canvas.width / canvas.clientWidth });
    context.beginPath();
    context.moveTo(from.x, from.y);
    context.lineTo(to.x, to.y);
    context.stroke();
    useImage();
  }

  function clearSketch() {
    const canvas = $("sketch");
    const context = canvas.getContext("2d");
    context.fillStyle = "#ffffff";
    context.fillRect(0, 0, canvas.width, canvas.height);
    state.hasImage = false;
  }

  function useImage() {
    state.hasImage = true;
    schedule();
  }

  async function upload() {
    const file = $("upload").files[0];
    if (!file) return;
    try {
      stopCamera();
      cover(await createImageBitmap(file));
      useImage();
    } catch (error) {
      say(`${file.name} is not a picture this browser can read.`, true);
    }
    $("upload").value = "";
  }

  function cover(source, width = source.width, height = source.height) {
    // Fill the canvas, cropping the longer side, as the model's size rarely matches a photo's.
    const canvas = $("sketch");
    const scale = Math.max(canvas.width / width, canvas.height / height);
    const w = width * scale, h = height * scale;
    canvas.getContext("2d").drawImage(source, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
  }

  function setUpWebcam() {
    const button = $("webcam");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      button.disabled = true;
      return note("No webcam here: the browser offers cameras only to pages on https or this machine's address.");
    }
    button.addEventListener("click", () => (state.camera ? stopCamera() : startCamera()));
  }

  async function startCamera() {
    try {
      state.camera = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    } catch (error) {
      return note(`No webcam: ${error.message || error.name}.`);
    }
    $("camera").srcObject = state.camera;
    await $("camera").play();
    $("webcam").classList.add("on");
    note("");
    captureCamera();
  }

  function captureCamera() {
    // One frame per painted picture: the camera runs as fast as the pictures come, no faster.
    const video = $("camera");
    if (!state.camera || !video.videoWidth) return;
    cover(video, video.videoWidth, video.videoHeight);
    state.hasImage = true;
    send();
  }

  function stopCamera() {
    if (!state.camera) return;
    state.camera.getTracks().forEach((track) => track.stop());
    state.camera = null;
    $("webcam").classList.remove("on");
  }

  function note(text) {
    $("webcam-note").textContent = text;
    $("webcam-note").hidden = !text;
  }

  start().catch((error) => say(`The page could not start: ${error.message}`, true));
})();
