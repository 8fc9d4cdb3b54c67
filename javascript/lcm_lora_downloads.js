// LCM-LoRA tab (lib_lcm/downloads/tab.py):
// - The table's buttons are HTML; a click queues its action and clicks the tab's hidden gradio button,
//   whose frontend hook (lcmLoraTakeAction) hands the action over to Python, as the WebUI's own
//   Extensions tab does for its install buttons.
// - Every request carries the accordion's current preset (lcmLoraCurrentPreset), so "recommended" and
//   the primary button follow what the accordion would use.
// - Opening the tab refreshes it; while a download runs, the Refresh button is clicked once a second
//   so the progress moves (gradio's own polling needs the queue, which A1111 may run without). When
//   downloads finish, the WebUI's hidden Lora refresh buttons are clicked so the Lora cards show them.
// - A "Save as…" left open, and what was typed in it, survive those refreshes.
// Loaded by the WebUI as a classic script (modules/ui_gradio_extensions.py); globals are prefixed.
(function () {
    "use strict";
    var REFRESH_ID = "lcm_lora_downloads_refresh";
    var RUN_ID = "lcm_lora_action_run";
    var CATALOG_ID = "lcm_lora_catalog";
    var TAB_TITLE = "LCM-LoRA";
    var LORA_REFRESH_IDS = ["txt2img_lora_extra_refresh_internal", "img2img_lora_extra_refresh_internal"];
    var timer = null;
    var wasRunning = false;
    var queued = []; // row actions waiting for the hidden button's hook
    var drafts = {}; // catalog key -> {open, value, focused}: the rows' "Save as…"
    var observer = null;

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

    // The accordion's preset: the one last picked or ticked in either tab (javascript/lcm_lora.js), else
    // the txt2img accordion's; "" where there is no accordion (python -m lib_lcm ui).
    function currentPreset(given) {
        if (window.lcmLoraLastPreset) {
            return window.lcmLoraLastPreset;
        }
        var input = lcmLoraRoot().querySelector("#script_txt2img_lcmlora_preset input");
        return (input && input.value) || given || "";
    }

    function takeAction(action, preset) {
        var next = queued.shift();
        if (queued.length) {
            setTimeout(function () { lcmLoraClick(RUN_ID); }, 300);
        }
        return [next ? JSON.stringify(next) : (action || ""), currentPreset(preset)];
    }

    function rowKey(element) {
        return element.getAttribute("data-lcm-lora-key") || "";
    }

    function saveAsInput(key) {
        return lcmLoraRoot().querySelector(".lcm-lora-save-as input[data-lcm-lora-key='" + key + "']");
    }

    function runRowAction(button) {
        var key = rowKey(button);
        var request = {action: button.getAttribute("data-lcm-lora-action"), key: key};
        if (button.getAttribute("data-lcm-lora-named") === "1") {
            var input = saveAsInput(key);
            request.name = input ? input.value : "";
            delete drafts[key];
        }
        button.disabled = true;
        queued.push(request);
        lcmLoraClick(RUN_ID);
        // gradio 3 drops a click that arrives while the same event still runs: click again until taken.
        var tries = 0;
        (function retry() {
            setTimeout(function () {
                if (queued.indexOf(request) !== -1 && tries++ < 20) {
                    lcmLoraClick(RUN_ID);
                    retry();
                }
            }, 700);
        }());
    }

    function draft(key) {
        drafts[key] = drafts[key] || {open: false, value: "", focused: false};
        watchCatalog();
        return drafts[key];
    }

    // The table is rendered anew on every refresh: put back the open "Save as…" and its text.
    function restoreDrafts() {
        Object.keys(drafts).forEach(function (key) {
            var state = drafts[key];
            var details = lcmLoraRoot().querySelector("details.lcm-lora-save-as[data-lcm-lora-key='" + key + "']");
            if (!details) {
                return;
            }
            if (state.open && !details.open) {
                details.open = true;
            }
            var input = details.querySelector("input");
            if (input && input.value !== state.value) {
                input.value = state.value;
            }
            if (input && state.focused && document.activeElement !== input) {
                input.focus();
            }
        });
    }

    function watchCatalog() {
        var catalog = lcmLoraRoot().querySelector("#" + CATALOG_ID);
        if (observer || !catalog || typeof MutationObserver !== "function") {
            return;
        }
        observer = new MutationObserver(function () {
            try {
                restoreDrafts();
            } catch (error) {
                console.error("[LCM-LoRA]", error);
            }
        });
        observer.observe(catalog, {childList: true, subtree: true});
    }

    function isTabButton(element) {
        return element.tagName === "BUTTON" && element.parentElement
            && element.parentElement.classList.contains("tab-nav") && element.textContent.trim() === TAB_TITLE;
    }

    // composedPath() also sees inside a shadow root, where event.target would be the host element.
    document.addEventListener("click", function (event) {
        var path = event.composedPath ? event.composedPath() : [event.target];
        for (var i = 0; i < path.length; i++) {
            var element = path[i];
            if (!element || !element.getAttribute) {
                continue;
            }
            try {
                if (element.getAttribute("data-lcm-lora-action")) {
                    runRowAction(element);
                }
                if (typeof element.id === "string" && element.id.indexOf("lcm_lora_download_") === 0) {
                    setTimeout(lcmLoraWatch, 300); // a download may have started: follow it
                    return;
                }
                if (element.getAttribute("data-lcm-lora-action") || isTabButton(element)) {
                    if (isTabButton(element)) { // the tab was opened: show what is true now
                        setTimeout(function () { lcmLoraClick(REFRESH_ID); }, 50);
                        setTimeout(lcmLoraWatch, 600);
                    }
                    return;
                }
            } catch (error) {
                console.error("[LCM-LoRA]", error);
                return;
            }
        }
    }, true);

    document.addEventListener("input", function (event) {
        var target = event.composedPath ? event.composedPath()[0] : event.target;
        if (target && target.closest && target.closest(".lcm-lora-save-as")) {
            draft(rowKey(target)).value = target.value;
        }
    }, true);

    document.addEventListener("keydown", function (event) {
        var target = event.composedPath ? event.composedPath()[0] : event.target;
        if (event.key === "Enter" && target && target.closest && target.closest(".lcm-lora-save-as")) {
            var button = target.closest(".lcm-lora-save-as").querySelector("[data-lcm-lora-action]");
            if (button) {
                event.preventDefault();
                button.click();
            }
        }
    }, true);

    ["focusin", "focusout"].forEach(function (name) {
        document.addEventListener(name, function (event) {
            var target = event.composedPath ? event.composedPath()[0] : event.target;
            if (target && target.closest && target.closest(".lcm-lora-save-as") && target.tagName === "INPUT") {
                draft(rowKey(target)).focused = name === "focusin";
            }
        }, true);
    });

    // "toggle" does not bubble, but a capturing listener sees it.
    document.addEventListener("toggle", function (event) {
        var target = event.target;
        if (target && target.classList && target.classList.contains("lcm-lora-save-as")) {
            draft(rowKey(target)).open = target.open;
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
    window.lcmLoraCurrentPreset = currentPreset;
    window.lcmLoraTakeAction = takeAction;
})();
