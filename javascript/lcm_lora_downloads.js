// LCM-LoRA tab: while a download runs, click the tab's Refresh button once a second so the progress
// moves (gradio's own polling needs the queue, which A1111 may run without). When downloads finish,
// click the WebUI's hidden Lora refresh buttons so the new file shows up in the Lora cards at once.
// Loaded by the WebUI as a classic script (modules/ui_gradio_extensions.py); globals are prefixed.
(function () {
    "use strict";
    var REFRESH_ID = "lcm_lora_downloads_refresh";
    var LORA_REFRESH_IDS = ["txt2img_lora_extra_refresh_internal", "img2img_lora_extra_refresh_internal"];
    var timer = null;
    var wasRunning = false;

    function lcmLoraRoot() {
        if (typeof gradioApp === "function") {
            return gradioApp();
        }
        var app = document.getElementsByTagName("gradio-app")[0];
        return app ? (app.shadowRoot || app) : document;
    }

    function lcmLoraClick(id) {
        var button = lcmLoraRoot().querySelector("#" + id);
        if (button) {
            button.click();
        }
    }

    function lcmLoraPoll() {
        var running = lcmLoraRoot().querySelector("[data-lcm-lora-state='running']") !== null;
        if (running) {
            wasRunning = true;
            lcmLoraClick(REFRESH_ID);
            return;
        }
        if (wasRunning) {
            wasRunning = false;
            LORA_REFRESH_IDS.forEach(lcmLoraClick);
        }
        clearInterval(timer);
        timer = null;
    }

    function lcmLoraWatch() {
        if (timer === null) {
            timer = setInterval(lcmLoraPoll, 1000);
        }
    }

    // Any of the tab's download buttons starts the watch; the first poll sees whether a job runs.
    // composedPath() also sees inside a shadow root, where event.target would be the host element.
    document.addEventListener("click", function (event) {
        var path = event.composedPath ? event.composedPath() : [event.target];
        for (var i = 0; i < path.length; i++) {
            var id = path[i] && path[i].id;
            if (typeof id === "string" && id.indexOf("lcm_lora_download_") === 0) {
                setTimeout(lcmLoraWatch, 300);
                return;
            }
        }
    }, true);

    // A page opened while a download is already running (another tab, the API) picks it up too.
    var lcmLoraStart = function () { setTimeout(lcmLoraWatch, 500); };
    if (typeof onUiLoaded === "function") {
        onUiLoaded(lcmLoraStart);
    } else {
        window.addEventListener("load", lcmLoraStart);
    }
    window.lcmLoraWatchDownloads = lcmLoraWatch;
})();
