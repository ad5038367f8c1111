"""RESULTS.md from the bench's results dict (results.json holds the same figures with every run)."""

from __future__ import annotations

from typing import Any

from tinyae.tools.bench.common import fmt, md_table, run_note


def _pair(a: int, a_name: str, b: int, b_name: str, unit: str = "") -> str:
    u = f" {unit}" if unit else ""
    return f"{a:,}{u} ({a_name}) / {b:,}{u} ({b_name})"


def _ratios(r: dict, *keys: str) -> str:
    return " / ".join(fmt(r.get(k), 3) for k in keys)


def _skipped(section: dict) -> str | None:
    if section.get("status") in ("not measured", "skipped"):
        return f"not measured: {section.get('reason', '')}"
    return None


def render(res: dict) -> str:
    m = res["machine"]
    kind = "quick smoke run, figures not meaningful" if res["quick"] else "make bench"
    out = [
        "# tinyae benchmark results",
        "",
        f"Written by `{res['command']}` ({kind})"
        f" on {m['date']}, commit `{m['commit']}`{' (with uncommitted changes)' if m['dirty'] else ''}, "
        f"in {res['elapsed_s']:.0f} s.",
        f"Machine: **{m['cores']} cores**, {m['cpu']}, {m['os']}, Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["tools"].items())
        + ".",
        "Timings are medians of several runs (the count is given with each); every run is in "
        "`results.json`. Device costs are exact instruction counts and do not vary between runs.",
        "",
    ]
    out += _quality(res["quality"])
    out += _device(res["device"])
    out += _footprint(res["footprint"])
    from tinyae.tools.bench.timing import render as timing_section

    out += timing_section(res.get("timing"))
    out += _frontend(res.get("frontend"))
    from tinyae.tools.bench.calibration import render as calibration_section

    out += calibration_section(res.get("calibration"))
    out += _board_libraries(res.get("board_libraries"), res["device"])
    out += _skab(res.get("skab"))
    from tinyae.tools.bench.threshold import render as threshold_section

    out += threshold_section(res.get("threshold"))
    out += _vae(res.get("vae"))
    out += _pipeline(res["pipeline"])
    out += render_streaming(res["streaming"])
    out += _hostref(res["host_reference"])
    from tinyae.tools.bench.ingest import render as ingest_render

    out += ingest_render(res.get("ingest"))
    return "\n".join(out) + "\n"


def _quality(q: dict) -> list[str]:
    out = ["## Detection quality", ""]
    rep = q.get("reproducibility", {})
    d = rep.get("report_digits", 4)
    out.append(
        f"Test-split figures at the threshold calibrated on normal validation windows "
        f"({q['threshold_method']}); float = the Keras model, int8 = the host reference (tflite_micro), "
        f"which the device matches bit for bit. Reproducibility: the default experiment was trained "
        f"{rep.get('runs', 1)} time(s) from scratch; figures "
        + (
            "were identical to every digit the pipeline keeps (6)"
            if rep.get("identical")
            else f"agreed to {rep.get('agreeing_digits')} decimal places"
        )
        + f", so they are reported with {d} digits."
    )
    out.append("")
    rows = []
    for name, f in q["datasets"].items():
        if "status" in f:
            rows.append([name, "—", *(["—"] * 6), f"not measured: {f.get('reason', '')}"])
            continue
        far = f.get("test_false_alarm_rate_int8")
        for kind in ("float", "int8"):
            if kind not in f:
                continue
            k = f[kind]
            rows.append([
                name if kind == "float" else "", f["shape"] if kind == "float" else "", kind,
                fmt(k["roc_auc"], d), fmt(k["pr_auc"], d), fmt(k["f1"], d), fmt(k["precision"], d),
                fmt(k["recall"], d), "",
            ])  # fmt: skip
        if "float" not in f and "int8" not in f:
            rows.append([
                name, f["shape"], "int8", "n/a", "n/a", "n/a", "n/a", "n/a",
                f"{fmt(far, d)} of {f.get('test_windows_streamed')} test windows flagged (no anomalies)",
            ])  # fmt: skip
    out += md_table(
        ["data set", "model", "", "ROC AUC", "PR AUC", "F1", "precision", "recall", "false alarms"], rows
    )
    out += ["", "Windows (train / val / test) and commands:", ""]
    for name, f in q["datasets"].items():
        if "status" in f:
            continue
        w = f["windows"]
        out.append(
            f"- {name}: {w['train']} / {w['val']} / {w['test']} windows; {f['note']}; "
            f"threshold {f['threshold']['value']:.6g}; `{f['command']}`"
        )
    if q.get("by_fault"):
        out.append(
            "- int8 ROC AUC per synthetic fault (normal windows vs that fault): "
            + ", ".join(f"{k} {v:.4f}" for k, v in q["by_fault"].items())
        )
    out += ["", "Split protocol (`tinyae.train.data.SPLIT_PROTOCOL`):", ""]
    out += ["> " + line for line in q["split_protocol"].splitlines()]
    out += ["", f"Config: `{q['config']}` with the overrides in each command (full config saved as "
            "`config.toml` beside each model).", ""]  # fmt: skip
    return out


def _tflm_cell(t: dict | None, key: str, unit: str = "") -> str:
    if not t:
        return "—"
    if "status" in t:
        return "not measured"
    return f"{t[key]:,}{unit}"


def _device(dev: dict) -> list[str]:
    out = ["## Device cost on the emulated Cortex-M4F (QEMU mps2-an386): compiled engine and TFLM", ""]
    skip = _skipped(dev)
    if skip:
        return [*out, skip, ""]
    out.append(dev["method"])
    out.append("")
    out += run_note(dev)
    out += _models_check(dev.get("models_check"))
    if dev.get("tflm_status"):
        out += [f"TFLM: {_skipped(dev['tflm_status'])}", ""]
    rows = []
    for key, r in dev["models"].items():
        if "status" in r:
            rows.append([key, *(["—"] * 9), _skipped(r) or ""])
            continue
        os_, o2 = r.get("Os", {}), r.get("O2", {})
        t = r.get("tflm", {})
        exact = [f"{os_.get('bit_exact_windows', '—')}/{os_.get('windows', '—')}"]
        exact += [f"{v['bit_exact_windows']}/{v['windows']}" for v in t.values() if "windows" in v]
        rows.append([
            key, r["shape"], r["output"], fmt(r["macs"]), fmt(os_.get("instructions")),
            fmt(os_.get("instructions_per_mac"), 2), fmt(o2.get("instructions")),
            _tflm_cell(t.get("chirale"), "instructions"), _tflm_cell(t.get("upstream"), "instructions"),
            " · ".join(exact),
        ])  # fmt: skip
    out += md_table(
        ["model", "shape", "output", "MACs", "compiled -Os", "per MAC", "compiled -O2",
         "TFLM Chirale 2.0.0 CMSIS-NN -Os", "TFLM upstream 90b983c reference -Os",
         "bit-exact windows (compiled · Chirale · upstream)"],
        rows,
    )  # fmt: skip
    out += [
        "",
        "Instructions per inference (exact counts). The same models' flash and RAM are under Footprint.",
        "",
    ]
    ratios = dev.get("ratios") or {}
    rrows = []
    for key, per_lib in ratios.items():
        for lib, r in per_lib.items():
            rrows.append(
                [key, lib, fmt(r["instructions"], 3), fmt(r["flash_added"], 3), fmt(r["ram_added"], 3)]
            )
    if rrows:
        out += [
            "Compiled engine / TFLM library, each model measured in the same harness and run (below 1 = "
            "fewer instructions or bytes than that library):",
            "",
        ]
        out += md_table(["model", "TFLM library", "instructions", "flash added", "static RAM added"], rrows)
        out.append("")
    lg = dev.get("logistic_extra")
    if lg:
        parts = [f"compiled -Os {lg['Os']:+,}"] + ([f"compiled -O2 {lg['O2']:+,}"] if "O2" in lg else [])
        parts += [f"TFLM {k.removeprefix('tflm_')} {v:+,}" for k, v in lg.items() if k.startswith("tflm_")]
        out += [
            "A final LOGISTIC (reference_logistic minus reference, same shape), instructions per inference: "
            + "; ".join(parts)
            + ". The compiled engine applies it as a 256-entry table in the last layer's requantization.",
            "",
        ]
    out += ["Commands (train, then build and run the bench image):", ""]
    measured = [r for r in dev["models"].values() if "status" not in r]
    for key, r in dev["models"].items():
        if "train_command" in r:
            out.append(f"- {key}: `{r['train_command']}`")
    if not measured:
        return [*out, ""]
    first = measured[0]
    cmd, how = first["Os"]["build_command"], first["Os"]["run"]
    out.append(f"- bench image (-Os; -O2 the same with -O2): `{cmd}`, run by {how}")
    for lib, t in first.get("tflm", {}).items():
        if "build_command" in t:
            out.append(f"- TFLM {lib} bench image: `{t['build_command']}`")
    out.append("")
    return out


def _footprint(fp: dict) -> list[str]:
    out = ["## Footprint", ""]
    skip = _skipped(fp)
    if skip:
        return [*out, skip, ""]
    out.append(fp["method"])
    out.append("")
    rows = []
    for k, r in fp["models"].items():
        t = r.get("tflm", {})
        rows.append([
            k, r["shape"], f"{fmt(r['flash_added'])} B", f"{fmt(r['ram_added'])} B",
            f"{fmt(r['model_const_bytes'])} B / {fmt(r['engine_code_bytes'])} B",
            _tflm_cell(t.get("chirale"), "flash_added", " B"), _tflm_cell(t.get("chirale"), "ram_added", " B"),
            _tflm_cell(t.get("upstream"), "flash_added", " B"), _tflm_cell(t.get("upstream"), "ram_added", " B"),
            f"{fmt(r['tflite_bytes'])} B", f"{fmt(r['tflm_arena_bytes'])} B",
        ])  # fmt: skip
    out += md_table(
        ["model", "shape", "compiled: flash added", "compiled: static RAM added",
         "of the flash: model constants / engine code", "Chirale: flash added", "Chirale: static RAM added",
         "upstream: flash added", "upstream: static RAM added", ".tflite", "TFLM arena (linked)"],
        rows,
    )  # fmt: skip
    out.append("")
    out += run_note(fp)
    return out


def _models_check(check: dict | None) -> list[str]:
    """Whether a device section measured on its own measured the models the rest of the file did."""
    if not check:
        return []
    diffs = check["differences"]
    if not diffs:
        return [f"Its models are those of {check['compared_with']} (sha256 where recorded, shape, MACs, "
                "constant, .tflite, arena and scratch bytes all equal).", ""]  # fmt: skip
    return [f"Its models differ from those of {check['compared_with']}, which the other sections measured: "
            + "; ".join(diffs) + ".", ""]  # fmt: skip


def _frontend(fe: dict | None) -> list[str]:
    if not fe:
        return []
    out = ["## Feature front-ends", "", fe["method"], ""]
    rows = []
    for r in fe["quality"]:
        if "status" in r:
            rows.append([r["dataset"], r["frontend"], "", "", "not measured: " + r["reason"], "", ""])
            continue
        rows.append([
            r["dataset"], r["frontend"], fmt(r["features"]), r["shape"],
            f"{fmt(r.get('roc_auc_float'))} / {fmt(r.get('roc_auc_int8'))}",
            f"{fmt(r.get('pr_auc_float'))} / {fmt(r.get('pr_auc_int8'))}", fmt(r.get("f1_int8")),
        ])  # fmt: skip
    out += md_table(
        [
            "data set",
            "front-end",
            "features",
            "network",
            "ROC AUC float / int8",
            "PR AUC float / int8",
            "F1 int8",
        ],
        rows,
    )
    out += ["", "Commands:", ""]
    out += [f"- {r['dataset']}, {r['frontend']}: `{r['command']}`" for r in fe["quality"] if "command" in r]
    if fe["device"]:
        out += ["", "Front-end cost on the emulated Cortex-M4F (-Os), beside the network it feeds:", ""]
        rows = [
            [d["frontend"], d["window"], fmt(d["features"]),
             f"{fmt(d['instructions_min'])} – {fmt(d['instructions_max'])}", f"{fmt(d['flash_added'])} B",
             f"{fmt(d['ram_added'])} B", f"{d['bit_equal_values']}/{d['windows'] * d['features']}",
             fmt(d["network_macs"])]
            for d in fe["device"]
        ]  # fmt: skip
        out += md_table(
            ["front-end", "window", "features", "instructions / window", "flash added", "static RAM added",
             "features bit-equal to the host build", "network MACs"],
            rows,
        )  # fmt: skip
        out += ["", f"Harness build: `{fe['device'][0]['build_command']}`"]
        out += [
            "",
            "The spectral front-end's target is at most 15,000 instructions for a 64x3 window (it took "
            "26,745 before the FFT rewrite of issue 19: packing to bit-reversed order, one pass of additions "
            "for the first two stages, bins k and N/2-k from one product, a shorter log series).",
        ]
    out.append("")
    return out


def _pct(v: Any) -> str:
    return "—" if v is None else f"{v:.2f}"


def _skab(sk: dict | None) -> list[str]:
    if not sk:
        return []
    out = ["## SKAB (Skoltech Anomaly Benchmark)", ""]
    skipped = _skipped(sk)
    if skipped:
        return [*out, skipped, ""]
    t = sk["target"]
    out += [
        "34 recordings of a pump testbed at about 1 Hz, one anomaly each, labelled per row (SKAB v0.9, "
        "../shared/datasets/skab). Configuration: `configs/skab.toml` for every row (docs/skab.md explains "
        f"each choice); target: F1 >= {t['f1']} with FAR <= {t['far_pct']} % from the int8 model. int8 = "
        "the host reference (the device's preprocessing + tflite_micro), which the device matches bit for "
        "bit (verified on the emulated board below). FAR = false alarms / normal rows, MAR = missed / "
        "anomalous rows, over all test rows of the 34 files together.",
        "",
    ]
    for name, text in sk["protocols"].items():
        out.append(f"- **{name}**: {text}.")
    np_ = sk.get("no_peeking") or {}
    if "logo" in np_:
        out.append(
            "- **per-file, leave one group out** (the result: no configuration choice saw the scored files' "
            f"labels): {np_['protocol']} Two row mappings: tinyae's (the device's alarm at every test row) "
            f"and the Conv-AE reference's ({np_['convae_rows']})."
        )
    out += [
        "",
        "The configs/skab.toml rows below were configured on SKAB itself: configs/skab.toml holds the "
        "configuration the leave-one-group-out procedure picks when given all three folders, so their figures "
        "are in-sample; the leave-one-group-out rows are the comparable ones.",
        "",
    ]
    rows = []
    for mapping, r in (np_.get("logo") or {}).items():
        m = r["int8"]
        rows.append([f"**tinyae per-file, leave one group out, {mapping} rows**", "int8", f"**{fmt(m['f1'], 3)}**",
                     _pct(m["far_pct"]), _pct(m["mar_pct"]), "", "", ""])  # fmt: skip
    for key, r in sk["rows"].items():
        if "status" in r:
            rows.append([key, "", "", "not measured: " + r["reason"], "", "", "", ""])
            continue
        for q in ("float", "int8"):
            m = r[q]
            rows.append([
                f"tinyae {r['protocol']}, {r['variant']}" if q == "float" else "", q, fmt(m["f1"], 3),
                _pct(m["far_pct"]), _pct(m["mar_pct"]),
                r["model"]["shape"] if q == "float" else "", fmt(r["model"]["macs"]) if q == "float" else "",
                f"{fmt(r['model']['tflite_bytes'])} B" if q == "float" else "",
            ])  # fmt: skip
    for lb in sk["leaderboard"]:
        rows.append([f"leaderboard: {lb['method']}", "float", fmt(lb["f1"], 2), _pct(lb["far_pct"]),
                     _pct(lb["mar_pct"]), "", "", ""])  # fmt: skip
    out += md_table(["detector", "model", "F1", "FAR %", "MAR %", "network", "MACs", ".tflite"], rows)
    out += ["", "Commands (each prints its row; `--json` writes every figure):", ""]
    if "command" in np_:
        out.append(f"- leave one group out (both mappings): `{np_['command']}`")
    out += [f"- {k}: `{r['command']}`" for k, r in sk["rows"].items() if "command" in r]
    out += [
        '- leaderboard: the figures SKAB\'s README publishes (github.com/waico/SKAB, "Strict Leaderboard", '
        "outlier detection: test rows only); their detectors train one model per file like the per-file rows",
        "",
    ]
    if "logo" in np_:
        g = np_["grid"]
        models = ", ".join(f"{x['channels']} / {x['window']} rows" for x in g["models"])
        out += [
            "Leave one group out, fold by fold (int8; the configuration with the best pooled F1 on the two other "
            f"folders, from {g['configurations']} = channel set and window "
            f"({models}) x headroom "
            f"{', '.join(f'{h:g}' for h in g['headrooms'])} x threshold (percentile "
            f"{', '.join(f'{p:g}' for p in g['percentiles'])} of the training rows' window scores x "
            f"{', '.join(f'{f:g}' for f in g['factors'])}) x alarm ({', '.join(g['alarms'])})):",
            "",
        ]
        frows = []
        for mapping, r in np_["logo"].items():
            for f in r["folds"]:
                h, c = f["held_out_figures"], f["on_chosen_groups"]
                frows.append([mapping, f"{f['held_out']} ({f['files']} files)", f["choice"],
                              f"{fmt(c['f1'], 3)} / {_pct(c['far_pct'])}",
                              f"{fmt(h['f1'], 3)} / {_pct(h['far_pct'])} / {_pct(h['mar_pct'])}"])  # fmt: skip
            a = r["chosen_on_all"]
            frows.append([mapping, "all three (configs/skab.toml, in-sample)", a["choice"],
                          f"{fmt(a['in_sample']['f1'], 3)} / {_pct(a['in_sample']['far_pct'])}", ""])  # fmt: skip
        out += md_table(
            ["rows", "held-out folder", "configuration chosen on the others",
             "F1 / FAR % where chosen", "held out: F1 / FAR % / MAR %"], frows,
        )  # fmt: skip
        out.append("")
    if sk.get("figure"):
        out += [f"![SKAB labels and int8 alarms per experiment]({sk['figure'].split('/')[-1]})", ""]
    pf = sk["rows"].get("per-file", {})
    if pf.get("sensitivity"):
        ok = [g for g in pf["sensitivity"] if g["f1"] >= t["f1"] and g["far_pct"] <= t["far_pct"]]
        out += [
            "How much the per-file figures depend on the threshold rule (int8, the same 34 models, "
            f"thresholds from each file's training rows; {len(ok)} of {len(pf['sensitivity'])} rules meet "
            "the target):",
            "",
        ]
        rows = [
            [f"{g['percentile']:g}", f"{g['factor']:g}", f"{g['k']} of {g['n']}", fmt(g["f1"], 3),
             _pct(g["far_pct"]), _pct(g["mar_pct"])]
            for g in pf["sensitivity"]
        ]  # fmt: skip
        out += md_table(["percentile", "factor", "alarm", "F1", "FAR %", "MAR %"], rows)
        out.append("")
        per = pf.get("per_file") or []
        if per:
            out += ["Per experiment (per-file protocol, int8): F1 / FAR % / MAR %:", ""]
            out.append(
                "; ".join(f"{p['name']} {p['f1']:.2f}/{p['far_pct']:.0f}/{p['mar_pct']:.0f}" for p in per)
            )
            out.append("")
    fes = sk.get("accelerometer_frontends") or []
    if fes:
        out += [
            "Front-ends on SKAB's two accelerometers alone (vibration RMS, real sensor scale: about 0.02-0.3 "
            "g, powers near 1e-6), 32-row windows, per-file protocol, defaults otherwise:",
            "",
        ]
        rows = []
        for r in fes:
            if "status" in r:
                rows.append([r["frontend"], "", "", "", "", r["status"] + ": " + r["reason"]])
                continue
            q = r["int8"]
            rows.append([r["frontend"], r["model"]["shape"], fmt(q["f1"], 3), _pct(q["far_pct"]),
                         fmt(q.get("roc_auc_mean")), f"constant features: {len(r['constant_features'])}; "
                         f"`{r['command']}`"])  # fmt: skip
        out += md_table(
            ["front-end", "network", "F1 int8", "FAR %", "mean per-file ROC AUC int8", "notes"], rows
        )
        out.append("")
    dev = sk.get("device") or {}
    if _skipped(dev):  # said, never dropped: a section that could not run is a finding too
        out += [f"The SKAB model on the emulated Cortex-M4F: {_skipped(dev)}", ""]
    if "shape" in dev:
        b = dev["budget_nano33ble"]
        out += run_note(dev)
        out += [
            "The SKAB model on the emulated Cortex-M4F (QEMU mps2-an386, -Os, exact instruction counts): "
            f"`{dev['model_command']}` ({dev['shape']}, {fmt(dev['macs'])} MACs, {fmt(dev['tflite_bytes'])} B "
            ".tflite).",
            "",
        ]
        cost = dev["verify"].get("device_cost_per_window") or {}
        rows = [
            [f"front-end ({dev.get('frontend_what', 'stats mean + std')})", fmt(dev["frontend_instructions"]),
             f"features bit-equal {dev['frontend_bit_equal']}"],
            ["network (compiled engine)", fmt(dev["engine_instructions"]),
             f"int8 outputs bit-exact with tflite_micro {dev['engine_bit_exact']}"],
            ["whole window in the real image (front-end + quantize + network + score + UART interrupts)",
             f"{fmt(cost.get('min'))} – {fmt(cost.get('max'))}" if cost else "—",
             f"`verify`: {dev['verify'].get('windows')} windows, "
             f"{dev['verify_mismatches']} output mismatches"],
        ]  # fmt: skip
        out += md_table(["part", "instructions / window", "check"], rows)
        out += ["", f"verify: `{dev['verify'].get('command')}` (image: `{dev['verify'].get('image')}`)", ""]
        gates = [(f"Nano 33 BLE budget estimate, {engine} engine", e) for engine, e in b.items()]
        if dev.get("budget_linked_image", {}).get("figures"):
            gates.append(("budget gate on the linked image (mps2_an386, the Nano 33 BLE's sizes)",
                          dev["budget_linked_image"]))  # fmt: skip
        for what, e in gates:
            fig = e["figures"]
            out.append(
                f"- {what}: {'fits' if e['fits'] else 'DOES NOT FIT'} "
                f"(flash {fmt(fig.get('flash_used'))} of {fmt(fig.get('flash_budget'))} B, RAM "
                f"{fmt(fig.get('ram_used'))} of {fmt(fig.get('ram_budget'))} B): `{e['command']}`"
            )
        out.append("")
    return out


def _vae(v: dict | None) -> list[str]:
    if not v or not v.get("rows"):
        return []
    out = ["## VAE variant", "", v["method"], ""]
    rows = []
    for r in v["rows"]:
        if "status" in r:
            rows.append([r["dataset"], "", "not measured: " + r["reason"], "", "", ""])
            continue
        for q in ("float", "int8"):
            p, e = r["plain"].get(q) or {}, r["vae"].get(q) or {}
            rows.append([
                r["dataset"] if q == "float" else "", q,
                f"{fmt(p.get('roc_auc'))} / {fmt(e.get('roc_auc'))}",
                f"{fmt(p.get('pr_auc'))} / {fmt(e.get('pr_auc'))}",
                f"{fmt(p.get('f1'))} / {fmt(e.get('f1'))}", r["shape"] if q == "float" else "",
            ])  # fmt: skip
    out += md_table(
        ["data set", "model", "ROC AUC plain / vae", "PR AUC plain / vae", "F1 plain / vae", "network"], rows
    )
    out += ["", "Commands:", ""]
    out += [f"- {r['dataset']}: `{r['command']}`" for r in v["rows"] if "command" in r]
    out.append("")
    return out


def _board_libraries(b: dict | None, dev: dict) -> list[str]:
    if b is None:
        return []
    out = ["## Board libraries: weight granularity and TFLM on the emulated board", ""]
    g = b["granularity"]
    if (skip := _skipped(g)) is not None:
        out += [f"Per-tensor vs per-channel weights: {skip}", ""]
    else:
        out += [g["method"] + ".", ""]
        rows = []
        for name, r in g["datasets"].items():
            if "status" in r:
                rows.append([name, r["reason"], "", "", ""])
                continue
            pt, pc = r["per_tensor"], r["per_channel"]
            rows.append([
                name, f"{fmt(pt['roc_auc'])} / {fmt(pc['roc_auc'])}", f"{r['roc_auc_cost']:+.4f}",
                f"{fmt(pt['pr_auc'])} / {fmt(pc['pr_auc'])}", f"{fmt(pt['f1'], 3)} / {fmt(pc['f1'], 3)}",
            ])  # fmt: skip
        out += md_table(["data set", "ROC AUC per-tensor / per-channel", "per-channel minus per-tensor",
                       "PR AUC", "F1"], rows)  # fmt: skip
        out += [""]
    t = b["tflm"]
    if (skip := _skipped(t)) is not None:
        return [*out, f"TFLM on the emulated board: {skip}", ""]
    out += [
        f"The default model ({t['weights'].replace('_', '-')} weights) with each pinned TFLM library as the "
        "emulated board's engine, verified window for window against tflite_micro by the host tool; the "
        "compiled engine's row is the device section's bench image (instructions of the network alone).",
        "",
    ]
    rows = []
    compiled = dev.get("models", {}).get("default", {})
    if "Os" in compiled:
        rows.append(["compiled engine (tinyae)", "see Device cost", f"{compiled['Os']['instructions']:,}",
                     "", ""])  # fmt: skip
    for r in t["libraries"].values():
        rows.append([
            r["library"], r["windows"] + (" bit-exact" if r["bit_exact"] else " MISMATCH"),
            f"{round(r['instructions_median']):,}", f"{r['flash_used']:,}",
            f"{r['ram_static']:,} (arena {r['engine_ram']:,})",
        ])  # fmt: skip
    out += md_table(
        ["engine", "windows", "instructions / window (median)", "image flash B", "static RAM B"], rows
    )
    out += [
        "",
        "Commands: " + "; ".join(f"`{c}`" for r in t["libraries"].values() for c in r["commands"]),
        "",
    ]
    out += run_note(t)
    return out


def _pipeline(p: dict) -> list[str]:
    out = ["## Pipeline", ""]
    rows = []
    for key, label in (("data_s", "data (load or generate, window, front-end, normalize)"),
                       ("training_s", "training (fit)"), ("conversion_s", "int8 conversion"),
                       ("train_model_wall_s", "`tinyae model`, whole run")):  # fmt: skip
        v = p.get(key)
        if v:
            runs = f"{len(v['runs'])}: " + ", ".join(f"{x:.2f}" for x in v["runs"])
            rows.append([label, f"{v['median']:.2f} s", runs, f"`{p['command']}`"])
    demo = p.get("demo", {})
    if _skipped(demo):
        rows.append(["demo", "—", "—", _skipped(demo) or ""])
    elif demo:
        rows.append(
            [demo["what"], f"{demo['wall_s']:.1f} s", "1 (cold, after set-up)", f"`{demo['command']}`"]
        )
    out += md_table(["figure", "median", "runs", "command"], rows)
    if p.get("note"):
        out += ["", p["note"]]
    out.append("")
    return out


def render_streaming(s: dict) -> list[str]:
    out = ["## Streaming", ""]
    rows = []
    c = s.get("codec", {})
    for key, label in (
        ("result_verify", "RESULT frame with verification payload"),
        ("result_plain", "RESULT frame"),
    ):
        if key in c:
            v = c[key]
            what = f"host codec: encode + decode (CRC checked) of a {label} ({v['wire_bytes']} B on the wire)"
            rows.append(
                [what, f"{v['frames_per_s']['median']:,.0f} frames/s", f"{c['repeats']}", c["command"]]
            )
    link = s.get("link", {})
    if _skipped(link):
        rows.append(["emulated UART byte rate, each direction alone", "—", "—", _skipped(link) or ""])
    elif link:
        rates = f"{link['up_bytes_per_s']['median']:,.0f} / {link['down_bytes_per_s']['median']:,.0f} B/s"
        rows.append(["emulated UART byte rate, host -> device / device -> host, each direction alone", rates,
                     f"{link['repeats']}", link["command"]])  # fmt: skip
    out += md_table(["figure", "value", "runs", "how"], rows)
    out.append("")
    pr = s.get("paired", {})
    if (skip := _skipped(pr)) is not None:
        return [*out, f"Stream and verify over the emulated link: {skip}", ""]
    if not pr:
        return out
    if "bound_vs_bound" not in pr:
        return [*out, "Stream and verify over the emulated link: measured by an older bench without a bound "
                "(`tinyae bench streaming --out bench` measures them again).", ""]  # fmt: skip
    aa = pr["bound_vs_bound"]
    margin = pr.get("stream", {}).get("bound_margin", 1.0)
    out += [
        f"Windows per second of `stream` and `verify` over the emulated link (model {pr['model']}, the test "
        f"split, {pr['samples']:,} samples), each run **beside its bound, in the same seconds**: the link "
        "image on a second emulator carrying the run's own bytes per window each way and nothing else (no "
        "protocol, decoding or inference; its host keeps up to "
        f"{pr['bound_ahead_bytes']:,} B in flight, more than any protocol host may), every emulator pinned "
        f"the same way ({pr['pinning']}). The link image beside itself, {len(aa['pairs'])} times: ratios "
        f"{aa['ratio']['min']:.3f} – {aa['ratio']['max']:.3f}; the margin, three times the root mean square "
        f"of their logs (or the largest ratio either way round, if more), is {margin:.3f}x, and a run's bound "
        "is the link image's rate beside it times that margin: a run as fast as the link image passes it only "
        "by more than three times the noise measured beside it (tools/bench/streaming.py says why). The "
        f"host tool keeps up to {pr['host_window_bytes']:,} B of sample batches unacknowledged (the "
        f"device buffers {pr['rx_buffer_bytes']:,} B). Rates are of the streaming itself (after the "
        "handshake); both emulators share the machine's CPUs, so the rates are lower than a run alone. "
        f"Load average {pr['load_avg']['before'][0]:.1f} before, {pr['load_avg']['after'][0]:.1f} after, "
        f"on {pr['cpus']} CPUs.",
        "",
    ]
    rows = []
    for mode, label in (
        ("stream", "`stream` (no verification payload)"),
        ("verify", "`verify` (payload on)"),
        ("stream_one_batch", "control: `stream` with one batch in flight (a window too small on purpose)"),
    ):
        m = pr.get(mode)
        if not m:
            continue
        runs = ", ".join(f"{r['windows_per_s']:.1f}/{r['bound_windows_per_s'] * m['bound_margin']:.1f}"
                         for r in m["pairs"])  # fmt: skip
        rt = m["ratio_to_bound"]
        rows.append([
            label, f"{m['up_bytes_per_window']:.1f} / {m['down_bytes_per_window']:.1f} B",
            f"{m['windows_per_s']['median']:,.1f}",
            f"{m['bound_windows_per_s']['median'] * m['bound_margin']:,.1f}",
            f"{rt['median']:.3f} ({rt['min']:.3f} – {rt['max']:.3f})", runs, str(m["retransmits"]),
        ])  # fmt: skip
    out += md_table(["run", "bytes per window up / down", "windows/s (median)", "bound (median)",
                     "run / bound: median (min – max)", "each pair: run / bound", "retransmits"], rows)  # fmt: skip
    main = [pr[m_] for m_ in ("stream", "verify") if m_ in pr]
    over = [p_ for m_ in main for p_ in m_["pairs"] if p_["ratio"] > m_["bound_margin"]]
    low = min(m_["ratio_to_bound"]["min"] for m_ in main) * 100
    out += ["", f"Every `stream` and `verify` run reaches {low:.1f} % of its bound or more; "
            f"{len(over) or 'no'} run{'s' if len(over) != 1 else ''} passed it."]  # fmt: skip
    cli = pr.get("verify_cli") or {}
    out += ["", f"Image: `{pr['image']}`; link image: `{pr['link_image']}`; runs: {pr['command']}.", ""]
    if cli:
        out += [
            f"One whole `{cli['command']}` alone (no bound beside it): {cli['windows']} windows verified bit "
            f"for bit, {cli.get('seconds', 0):.2f} s of streaming, {cli['windows_per_s']:.1f} windows/s, "
            f"{cli['retransmits']} retransmits.",
            "",
        ]
    c = cli.get("cost")
    if c:
        out += [
            f"Device cost per window in the real image (quantize + engine + score + UART interrupts, RESULT "
            f"frames' cost field from `verify --json`): {c['min']:,} – {c['max']:,} {c['unit']} "
            f"(median {c['median']:,.0f}).",
            "",
        ]
    return out


def _hostref(h: dict) -> list[str]:
    out = ["## Host reference throughput (tflite_micro)", ""]
    rows = []
    for r in h.get("models", []):
        full = f"{r['evaluate_windows_per_s']['median']:,.0f}"
        invoke = f"{r['tflm_invoke_windows_per_s']['median']:,.0f}"
        rows.append(
            [r["model"], r["shape"], full, invoke, f"{r['repeats']} × {r['windows_per_run']} windows"]
        )
    out += md_table(
        ["model", "shape", "windows/s (preprocess + TFLM + score)", "windows/s (TFLM invoke only)", "runs"],
        rows,
    )
    if h.get("models"):
        out += ["", h["models"][0]["command"]]
    out.append("")
    return out
