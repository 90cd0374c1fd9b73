"""The public verification page: one self-contained HTML document (inline CSS, JS and SVG; zh default, en)."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

ICON = {"pass": "✔", "warn": "!", "fail": "✘", "info": "i"}
HEADLINE = {
    "pass": ("验证通过", "Verified"),
    "warn": ("请注意", "Check the warnings"),
    "fail": ("验证未通过", "Verification failed"),
}
STEP = {
    "seed-lot": ("种子批次", "Seed lot"),
    "planting": ("播种/移栽", "Planting"),
    "field-operation": ("田间作业", "Field work"),
    "harvest": ("采收", "Harvest"),
    "primary-processing": ("产地初加工", "Primary processing"),
    "processing": ("炮制", "Processing"),
    "qc": ("质检", "QC"),
    "release": ("放行", "Release"),
    "packing": ("包装", "Packing"),
    "shipping": ("发货", "Shipping"),
    "receiving": ("收货", "Receiving"),
}
CSS = (Path(__file__).with_name("page.css")).read_text()
JS = """
function setLang(l){document.documentElement.lang=l;try{localStorage.setItem('daodi-lang',l)}catch(e){}}
document.getElementById('lang').onclick=function(){setLang(document.documentElement.lang==='zh'?'en':'zh')};
try{var l=localStorage.getItem('daodi-lang');if(l)setLang(l)}catch(e){}
"""


def _t(zh: str, en: str) -> str:
    return f'<span class="zh">{escape(zh)}</span><span class="en">{escape(en)}</span>'


def _origin(origin: dict[str, Any] | None) -> str:
    if origin is None:
        return f"<p>{_t('没有产地信息', 'No origin recorded')}</p>"
    svg = origin["svg"]
    region = origin["region"]
    colour = "#2e7d32" if origin["status"] == "pass" else "#c62828"
    return (
        f'<svg viewBox="0 0 320 240" width="320" height="240" role="img" aria-label="map">'
        f'<rect width="320" height="240" fill="#eef3e8"/>'
        f'<path d="{escape(svg["region"])}" fill="#c8e6c9" stroke="#2e7d32" '
        'stroke-width="1.5" fill-rule="evenodd"/>'
        f'<path d="{escape(svg["plot"])}" fill="{colour}" stroke="{colour}" stroke-width="4"/></svg>'
        f'<svg viewBox="0 0 120 120" width="120" height="120" role="img" aria-label="plot">'
        f'<rect width="120" height="120" fill="#f3efe0"/><path d="{escape(svg["zoom"])}" fill="{colour}" '
        f'fill-opacity=".6" stroke="{colour}"/></svg>'
        f"<p>{_t('地块', 'Plot')} {escape(origin['plot'])} · {origin['area_mu']:.2f} {_t('亩', 'mu')} · "
        f"{origin['centroid'][0]:.4f}E {origin['centroid'][1]:.4f}N<br>"
        f"{_t(region['name_zh'], region['name_en'])}</p>"
    )


def _climate(climate: dict[str, Any] | None) -> str:
    if not climate:
        return f"<p class='muted'>{_t('无传感器数据', 'no sensor data')}</p>"
    names = {
        "air_temp": ("气温 °C", "Air temperature °C", "#e65100"),
        "soil_moisture": ("土壤湿度 %", "Soil moisture %", "#1565c0"),
    }
    parts = []
    for metric, data in climate["metrics"].items():
        zh, en, colour = names.get(metric, (metric, metric, "#333"))
        parts.append(
            f"<p>{_t(zh, en)}: {data['low']:.1f} – {data['high']:.1f} ({data['days']} {_t('天', 'days')})</p>"
            f'<svg viewBox="0 0 320 140" width="320" height="140">'
            '<rect width="320" height="140" fill="#fafafa"/>'
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
            f'points="{escape(data["points"])}"/></svg>'
        )
    return "".join(parts)


def render(verdict: dict[str, Any]) -> str:
    """The whole page for a verdict."""
    status = verdict["status"]
    head_zh, head_en = HEADLINE[status]
    herb, form = verdict.get("herb") or {}, verdict.get("form") or {}
    title_zh = f"{herb.get('name_zh', '')} {form.get('name_zh', '')}"
    title_en = f"{herb.get('name_en', '')} — {form.get('name_en', '')}"
    ids = " · ".join(
        escape(x)
        for x in (
            f"GTIN {verdict['gtin']}",
            verdict.get("lot") and f"批 {verdict['lot']}",
            verdict.get("serial"),
        )
        if x
    )
    checks = "".join(
        f'<li><span class="dot {c["status"]}">{ICON[c["status"]]}</span>'
        f"{_t(c['message_zh'], c['message_en'])}</li>"
        for c in verdict["checks"]
    )
    failures = [c for c in verdict["checks"] if c["status"] == "fail"]
    plain = "".join(f"<p class='bad'>{_t(c['message_zh'], c['message_en'])}</p>" for c in failures)
    timeline = "".join(
        f"<tr><td>{escape(e['time'][:10])}</td><td>{_t(*STEP.get(e['type'], (e['type'], e['type'])))}</td>"
        f"<td>{escape(e['lot'] or '')}</td><td class='muted'>#{e['ledger_index']}</td></tr>"
        for e in verdict["timeline"]
    )
    qc = "".join(
        f"<tr><td>{_t(q['name_zh'], q['name_en'])}</td><td class='{'' if q['ok'] else 'bad'}'>"
        f"{'—' if q['value'] is None else q['value']} {escape(q['unit'])}</td>"
        f"<td>{'' if q['min'] is None else '≥' + str(q['min'])} "
        f"{'' if q['max'] is None else '≤' + str(q['max'])}</td></tr>"
        for q in verdict["qc"]
    )
    ledger = verdict["ledger"]
    scans = verdict["scans"]
    recent = "".join(
        f"<li class='muted'>{escape(s['at'][:16].replace('T', ' '))} · "
        f"{escape(s['region'] or '—')} · {escape(s['agent'])}</li>"
        for s in scans["recent"]
    )
    suspicions = "".join(
        f"<p class='bad'>{_t(s['message_zh'], s['message_en'])}</p>" for s in scans["suspicions"]
    )
    ledger_status = (
        "pass" if ledger.get("total") and ledger.get("verified") == ledger.get("total") else "warn"
    )
    if ledger.get("broken"):
        ledger_status = "fail"
    return f"""<!doctype html>
<html lang="zh"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{escape(title_zh)} · 道地溯源验证</title><style>{CSS}</style></head>
<body><main>
<header><h1>{_t(title_zh, title_en)}</h1><button id="lang" type="button">EN / 中文</button></header>
<p class="muted">{ids}</p>
<div id="verdict" class="verdict {status}" data-status="{status}">{_t(head_zh, head_en)}</div>
{plain}
<section class="card"><h2>{_t("验证项目", "Checks")}</h2><ul id="checks">{checks}</ul></section>
<section class="card"><h2>{_t("产地", "Origin")}</h2>{_origin(verdict.get("origin"))}</section>
<section class="card"><h2>{_t("从种子到本批", "From seed lot to this lot")}</h2>
<table>{timeline or "<tr><td>—</td></tr>"}</table></section>
<section class="card"><h2>{_t("质检结果与限度", "QC results against limits")}</h2>
<table>{qc or "<tr><td>—</td></tr>"}</table></section>
<section class="card"><h2>{_t("生长期气候", "Climate during growth")}</h2>
{_climate(verdict.get("climate"))}</section>
<section class="card"><h2>{_t("账本", "Ledger")}</h2>
<p id="ledger"><span class="dot {ledger_status}">{ICON[ledger_status]}</span>
{_t("检查点签名与包含证明", "Checkpoint signature and inclusion proofs")}:
{ledger.get("verified", 0)}/{ledger.get("total", 0)} ·
{_t("见证方", "witnesses")} {ledger.get("witnesses", 0)}
· {_t("树大小", "tree size")} {ledger.get("checkpoint_size", "—")}</p></section>
<section class="card"><h2>{_t("扫描记录", "Scan history")}</h2>
<p>{_t("共扫描", "Scanned")} {scans["count"]} {_t("次", "times")}</p>{suspicions}<ul>{recent}</ul></section>
</main><script>{JS}</script></body></html>"""
