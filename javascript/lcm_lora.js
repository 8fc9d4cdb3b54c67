// The LCM-LoRA accordion on the txt2img and img2img pages.
//
// - Ticking the accordion moves the WebUI's Steps and CFG sliders (and the hires ones when Hires. fix
//   is on) to the preset's values; the sampler and schedule dropdowns follow through the hidden
//   "apply" button of lib_lcm/webui/page_sync.py (gradio 3 dropdowns cannot be set from the DOM).
//   Unticking puts back exactly what the user had.
// - While it is on, a slider moved outside the preset's range snaps to the value the generation
//   will use, and the accordion's own Steps/CFG follow the main sliders, so the page never shows
//   something other than what runs.
// - A notice says when CFG 1 makes the negative prompt useless.
// - The short labels get their details as tooltips (the page data's "tooltips"), and the preset last
//   picked or ticked is kept for the LCM-LoRA tab (window.lcmLoraLastPreset).
//
// Loaded by the WebUI as a classic script beside its own (modules/ui_gradio_extensions.py); uses its
// gradioApp(), onUiLoaded() and updateInput() (script.js, javascript/ui.js) when present. Element
// ids: guide section 12 (modules/ui.py) and Script.elem_id (modules/scripts.py). Never throws.
(function () {
    "use strict";

    var TABS = ["txt2img", "img2img"];
    var remembered = {}; // tab -> the user's values from before the accordion was ticked (present while on)
    var wanted = {}; // tab -> the sampler and schedule the dropdowns should show
    var sent = {}; // tab -> the values of the apply request on its way to the dropdowns

    function root() {
        if (typeof gradioApp === "function") {
            return gradioApp();
        }
        var app = document.getElementsByTagName("gradio-app")[0];
        return app ? (app.shadowRoot || app) : document;
    }

    function byId(id) {
        return root().querySelector("#" + id);
    }

    function ours(tab, item) {
        return "script_" + tab + "_lcmlora_" + item; // Script.elem_id for the title "LCM-LoRA"
    }

    function numberInput(id) {
        var element = byId(id);
        return element ? element.querySelector("input[type=number]") : null;
    }

    function readNumber(id) {
        var input = numberInput(id);
        var value = input ? parseFloat(input.value) : NaN;
        return isNaN(value) ? null : value;
    }

    function fire(input) {
        if (typeof updateInput === "function") {
            updateInput(input);
            return;
        }
        var event = new Event("input", {bubbles: true});
        Object.defineProperty(event, "target", {value: input});
        input.dispatchEvent(event);
    }

    function writeNumber(id, value) {
        var input = numberInput(id);
        if (!input || value === null || value === undefined || parseFloat(input.value) === value) {
            return;
        }
        input.value = String(value);
        fire(input);
        var range = byId(id).querySelector("input[type=range]");
        if (range) {
            range.value = String(value);
        }
    }

    function checked(id) {
        var box = root().querySelector("#" + id + "-checkbox input");
        if (box) {
            return box.checked;
        }
        var accordion = byId(id);
        return accordion ? accordion.classList.contains("input-accordion-open") : false;
    }

    function pageData(tab) {
        var holder = root().querySelector("#" + ours(tab, "hint") + " .lcm-lora-presets");
        if (!holder) {
            return null;
        }
        try {
            return JSON.parse(holder.getAttribute("data-presets"));
        } catch (error) {
            return null;
        }
    }

    function currentPresetName(tab, data) {
        var input = root().querySelector("#" + ours(tab, "preset") + " input");
        var shown = input && input.value;
        var chosen = remembered[tab] && remembered[tab].preset;
        return data.presets[shown] ? shown : (data.presets[chosen] ? chosen : "LCM-LoRA");
    }

    function currentPreset(tab, data) {
        return data.presets[currentPresetName(tab, data)] || null;
    }

    function clamp(value, range) {
        return Math.min(Math.max(value, range[0]), range[1]);
    }

    function snapshot(tab, sampler, scheduler) {
        return {
            steps: readNumber(tab + "_steps"),
            cfg: readNumber(tab + "_cfg_scale"),
            hrSteps: tab === "txt2img" ? readNumber("txt2img_hires_steps") : null,
            hrCfg: tab === "txt2img" ? readNumber("txt2img_hr_cfg") : null, // Forge only
            sampler: sampler,
            scheduler: scheduler
        };
    }

    function restore(tab, saved) {
        writeNumber(tab + "_steps", saved.steps);
        writeNumber(tab + "_cfg_scale", saved.cfg);
        if (tab === "txt2img") {
            writeNumber("txt2img_hires_steps", saved.hrSteps);
            writeNumber("txt2img_hr_cfg", saved.hrCfg);
        }
    }

    // The value that will run: the accordion's own when set (0 means "the main slider"), clamped.
    function effective(ownId, mainId, range) {
        var own = readNumber(ownId);
        var main = readNumber(mainId);
        return clamp(own ? own : (main === null ? range[2] : main), range);
    }

    function applyPreset(tab, preset) {
        var steps = effective(ours(tab, "steps"), tab + "_steps", preset.steps);
        var cfg = effective(ours(tab, "cfg"), tab + "_cfg_scale", preset.cfg);
        writeNumber(tab + "_steps", steps);
        writeNumber(tab + "_cfg_scale", cfg);
        fitOwn(tab, preset);
        if (tab === "txt2img" && checked("txt2img_hr")) {
            fitHires(preset);
        }
    }

    function fitOwn(tab, preset) {
        var steps = readNumber(ours(tab, "steps"));
        var cfg = readNumber(ours(tab, "cfg"));
        if (steps) {
            writeNumber(ours(tab, "steps"), clamp(steps, preset.steps));
        }
        if (cfg) {
            writeNumber(ours(tab, "cfg"), clamp(cfg, preset.cfg));
        }
    }

    function fitHires(preset) {
        var hrSteps = readNumber("txt2img_hires_steps");
        if (hrSteps) { // 0: "same as sampling steps", already in range
            writeNumber("txt2img_hires_steps", clamp(hrSteps, preset.steps));
        }
        var hrCfg = readNumber("txt2img_hr_cfg");
        if (hrCfg !== null) {
            writeNumber("txt2img_hr_cfg", clamp(hrCfg, preset.cfg));
        }
    }

    function dropdownValue(tab, kind) {
        var input = root().querySelector("#" + tab + "_" + kind + " input");
        return input ? input.value : null;
    }

    // The accordion's checkbox was ticked or unticked (inputAccordion.js sends it an "input" event).
    function onToggle(tab) {
        var on = checked(ours(tab, "enabled"));
        if (on === Boolean(remembered[tab])) {
            return; // the same state announced twice ("input", then "change")
        }
        var data = pageData(tab);
        if (!data) {
            return;
        }
        var presetName = currentPresetName(tab, data);
        if (on) {
            window.lcmLoraLastPreset = presetName;
            // While a restore is still on its way to the dropdowns, they do not show the user's value yet.
            var pending = wanted[tab] || {};
            remembered[tab] = snapshot(tab, pending.sampler || dropdownValue(tab, "sampling"),
                pending.scheduler || dropdownValue(tab, "scheduler"));
            remembered[tab].preset = presetName;
            movePreset(tab, data, data.presets[presetName]);
        } else {
            var saved = remembered[tab];
            delete remembered[tab];
            restore(tab, saved);
            want(tab, saved.sampler, saved.scheduler);
        }
        updateNotice(tab, on);
    }

    function movePreset(tab, data, preset) {
        applyPreset(tab, preset);
        if (data.setSampler) {
            want(tab, preset.sampler, preset.scheduler);
        }
    }

    // preset.change's frontend-only hook (lib_lcm/webui/script.py).
    function onPreset(tab, presetName) {
        try {
            var data = pageData(tab);
            var preset = data && data.presets[presetName];
            if (preset) {
                window.lcmLoraLastPreset = presetName;
                fitOwn(tab, preset);
                if (remembered[tab]) {
                    remembered[tab].preset = presetName;
                    movePreset(tab, data, preset);
                }
                updateNotice(tab, Boolean(remembered[tab]));
            }
        } catch (error) {
            console.error("[LCM-LoRA]", error);
        }
        return [presetName];
    }

    // Dropdowns: remember what they should show and click the hidden "apply" button until they do.
    // gradio 3 runs one apply at a time and drops clicks meanwhile; an apply sent earlier may still
    // land, so the goal is only met once no apply with other values is on its way.
    function want(tab, sampler, scheduler) {
        wanted[tab] = {sampler: sampler, scheduler: scheduler, attempts: 0};
        ensure(tab);
    }

    function shows(tab, values) {
        var scheduler = dropdownValue(tab, "scheduler");
        return (!values.sampler || dropdownValue(tab, "sampling") === values.sampler)
            && (!values.scheduler || scheduler === null || scheduler === values.scheduler);
    }

    function ensure(tab) {
        var goal = wanted[tab];
        if (!goal) {
            return;
        }
        if (sent[tab] && shows(tab, sent[tab])) {
            delete sent[tab]; // the last apply that went out has landed
        }
        if ((shows(tab, goal) && !sent[tab]) || goal.attempts >= 50) {
            delete wanted[tab];
            delete sent[tab];
            return;
        }
        goal.attempts += 1;
        var button = byId(ours(tab, "apply"));
        if (button && !sent[tab]) {
            button.dispatchEvent(new Event("click"));
        }
        setTimeout(function () { ensure(tab); }, 400);
    }

    // The apply button's _js hook, run only for a click gradio did not drop: it passes the inputs'
    // values, then the outputs'.
    function wantedValues(tab, enabled, presetName, sampler, scheduler) {
        var goal = wanted[tab] || {};
        var values = {sampler: goal.sampler || sampler, scheduler: goal.scheduler || scheduler};
        sent[tab] = values;
        return [enabled, presetName, values.sampler, values.scheduler];
    }

    function onMainSlider(tab, kind) {
        if (!checked(ours(tab, "enabled"))) {
            return;
        }
        var data = pageData(tab);
        var preset = data && currentPreset(tab, data);
        if (!preset) {
            return;
        }
        var mainId = kind === "steps" ? tab + "_steps" : tab + "_cfg_scale";
        var value = readNumber(mainId);
        if (value === null) {
            return;
        }
        var fitted = clamp(value, kind === "steps" ? preset.steps : preset.cfg);
        writeNumber(mainId, fitted);
        if (readNumber(ours(tab, kind))) { // the accordion's value is what runs: keep it equal
            writeNumber(ours(tab, kind), fitted);
        }
        updateNotice(tab, true);
    }

    function onOwnSlider(tab, kind) {
        if (!checked(ours(tab, "enabled"))) {
            return;
        }
        var data = pageData(tab);
        var preset = data && currentPreset(tab, data);
        var own = readNumber(ours(tab, kind));
        if (!preset || !own) {
            return;
        }
        var fitted = clamp(own, kind === "steps" ? preset.steps : preset.cfg);
        writeNumber(ours(tab, kind), fitted);
        writeNumber(kind === "steps" ? tab + "_steps" : tab + "_cfg_scale", fitted);
        updateNotice(tab, true);
    }

    function onHires() {
        if (!checked(ours("txt2img", "enabled")) || !checked("txt2img_hr")) {
            return;
        }
        var data = pageData("txt2img");
        var preset = data && currentPreset("txt2img", data);
        if (preset) {
            fitHires(preset);
        }
    }

    function updateNotice(tab, enabled) {
        var box = root().querySelector("#" + ours(tab, "notice") + " .lcm-lora-notice");
        if (!box) {
            return;
        }
        var negative = root().querySelector("#" + tab + "_neg_prompt textarea");
        var data = pageData(tab);
        var preset = data && currentPreset(tab, data);
        var cfg = preset ? effective(ours(tab, "cfg"), tab + "_cfg_scale", preset.cfg) : readNumber(tab + "_cfg_scale");
        var useless = enabled && cfg === 1 && negative && negative.value.trim() !== "";
        box.textContent = useless ? "CFG is 1, so the negative prompt has no effect. Raise CFG to 1.5-2 to use it, "
            + "or leave it empty." : "";
        box.style.display = useless ? "" : "none";
    }

    function listen(element, events, handler) {
        if (!element || element.getAttribute("data-lcm-lora-bound") === "1") {
            return;
        }
        element.setAttribute("data-lcm-lora-bound", "1");
        events.forEach(function (name) {
            element.addEventListener(name, function () {
                try {
                    handler();
                } catch (error) {
                    console.error("[LCM-LoRA]", error);
                }
            });
        });
    }

    // "change" fires when a drag ends or a typed number is committed; clamping on "input" would
    // fight the user mid-drag.
    function install(tab) {
        listen(root().querySelector("#" + ours(tab, "enabled") + "-checkbox input"), ["input", "change"], function () {
            onToggle(tab);
        });
        listen(byId(tab + "_steps"), ["change"], function () { onMainSlider(tab, "steps"); });
        listen(byId(tab + "_cfg_scale"), ["change"], function () { onMainSlider(tab, "cfg"); });
        listen(byId(ours(tab, "steps")), ["change"], function () { onOwnSlider(tab, "steps"); });
        listen(byId(ours(tab, "cfg")), ["change"], function () { onOwnSlider(tab, "cfg"); });
        listen(root().querySelector("#" + tab + "_neg_prompt textarea"), ["input", "change"], function () {
            updateNotice(tab, checked(ours(tab, "enabled")));
        });
        if (tab === "txt2img") {
            listen(root().querySelector("#txt2img_hr-checkbox input"), ["change", "input"], onHires);
            listen(byId("txt2img_hires_steps"), ["change"], onHires);
            listen(byId("txt2img_hr_cfg"), ["change"], onHires);
        }
    }

    // The WebUI shows an element's title on hover (its own tooltips are titles too, javascript/hints.js).
    function addTooltips(tab) {
        var data = pageData(tab);
        var tips = (data && data.tooltips) || {};
        Object.keys(tips).forEach(function (item) {
            var element = byId(ours(tab, item));
            if (element && !element.title) {
                element.title = tips[item];
            }
        });
    }

    function installAll() {
        TABS.forEach(function (tab) {
            try {
                install(tab);
                addTooltips(tab);
                updateNotice(tab, checked(ours(tab, "enabled")));
            } catch (error) {
                console.error("[LCM-LoRA]", error);
            }
        });
    }

    // The status line's "Open the LCM-LoRA tab" link: click the tab's button (gradio 3 and 4 both
    // render the top-level tabs as buttons in #tabs .tab-nav).
    function openTab(event) {
        if (event && event.preventDefault) {
            event.preventDefault();
        }
        var buttons = root().querySelectorAll("#tabs .tab-nav button, #tabs > div > button");
        for (var i = 0; i < buttons.length; i++) {
            if (buttons[i].textContent.trim() === "LCM-LoRA") {
                buttons[i].click();
                return false;
            }
        }
        return false;
    }

    window.lcmLoraPreset = onPreset;
    window.lcmLoraWanted = wantedValues;
    window.lcmLoraOpenTab = openTab;
    if (typeof onUiLoaded === "function") {
        onUiLoaded(installAll);
    } else if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", installAll);
    } else {
        installAll();
    }
}());
