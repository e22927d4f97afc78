"""The per-query drill-down of the HTML report: the view search engineers know from Quepid and OpenSearch's Search
Relevance Workbench, inside the one self-contained file.

For each query, the engines' top k side by side; each product with its title (and image when one is cached), the
judge's label in colour, the human label where there is one, and the judge's reasoning on demand. A product that
several engines return carries the same colour stripe in every column, and hovering it outlines it everywhere.
Queries sort by the per-query difference of the main metric between two engines (worst regression first), by the
metric, or by the query. The data travel as JSON inside the page and a few lines of script draw them, so the page
works offline and opens anywhere.
"""

import hashlib
import html
import json
from typing import Any

from rae.evaluate.evaluation import Evaluation
from rae.labels import LABELS

STYLE = """
.dd-controls{margin:1em 0}.dd-query{border-top:2px solid #dee2e6;padding:0.6em 0}
.dd-query h3{margin:0.2em 0;font-size:16px}.dd-metrics{font-size:13px;color:#495057}
.dd-lists{display:grid;gap:8px;margin-top:6px}.dd-engine h4{margin:0 0 4px;font-size:13px}
.dd-item{border:1px solid #dee2e6;border-left-width:6px;border-radius:4px;padding:4px 6px;margin-bottom:4px;font-size:12px}
.dd-item.same{outline:2px solid #1c7ed6}.dd-item img{max-height:48px;float:right}
.dd-label{display:inline-block;padding:0 5px;border-radius:3px;color:white;font-size:11px}
.dd-human{font-size:11px;color:#495057}.dd-item details{margin-top:2px}.dd-item summary{cursor:pointer;color:#1c7ed6}
"""

SCRIPT = """
(function(){
const data = JSON.parse(document.getElementById('dd-data').textContent);
const colours = {highly_relevant:'#2b8a3e', acceptable_substitute:'#f08c00', irrelevant:'#c92a2a'};
const root = document.getElementById('dd-queries');
const sort = document.getElementById('dd-sort');
function el(tag, cls, text){const e=document.createElement(tag); if(cls) e.className=cls; if(text!==undefined) e.textContent=text; return e;}
function item(product, judged, human){
  const d = el('div', 'dd-item'); d.dataset.product = product.id; d.style.borderLeftColor = product.stripe;
  if(product.image){const i=el('img'); i.src=product.image; i.alt=''; d.appendChild(i);}
  d.appendChild(el('div', 'dd-title', product.title));
  const label = el('span', 'dd-label', judged ? judged.label.replace('_',' ') : 'not judged');
  label.style.background = judged ? colours[judged.label] : '#adb5bd'; d.appendChild(label);
  if(human) d.appendChild(el('span', 'dd-human', ' human: ' + human.replace('_',' ')));
  if(judged){const r=el('details'); r.appendChild(el('summary', null, 'reasoning'));
    r.appendChild(el('div', 'dd-reasoning', judged.reasoning || 'the judge gave no reasoning')); d.appendChild(r);}
  d.addEventListener('mouseenter', () => document.querySelectorAll(`[data-product="${CSS.escape(product.id)}"]`).forEach(x => x.classList.add('same')));
  d.addEventListener('mouseleave', () => document.querySelectorAll('.dd-item.same').forEach(x => x.classList.remove('same')));
  return d;
}
function draw(){
  const [key, direction] = sort.value.split(':');
  const queries = [...data.queries].sort((a, b) => {
    const x = key === 'text' ? a.text : a[key], y = key === 'text' ? b.text : b[key];
    return (x < y ? -1 : x > y ? 1 : 0) * (direction === 'desc' ? -1 : 1);
  });
  root.innerHTML = '';
  for(const q of queries){
    const s = el('section', 'dd-query'); s.dataset.query = q.id; s.id = 'query-' + q.id;
    s.appendChild(el('h3', null, q.text));
    s.appendChild(el('div', 'dd-metrics', data.engines.map(e => `${e} ${data.metric} ${q.metric[e].toFixed(3)}`).join(' · ') + ` · difference ${q.difference >= 0 ? '+' : ''}${q.difference.toFixed(3)}`));
    const lists = el('div', 'dd-lists'); lists.style.gridTemplateColumns = `repeat(${data.engines.length}, 1fr)`;
    for(const engine of data.engines){
      const column = el('div', 'dd-engine'); column.dataset.engine = engine; column.appendChild(el('h4', null, engine));
      for(const id of q.lists[engine]) column.appendChild(item(data.products[id], q.judged[id], q.human[id]));
      lists.appendChild(column);
    }
    s.appendChild(lists); root.appendChild(s);
  }
}
sort.addEventListener('change', draw); draw();
if(location.hash){ const target = document.getElementById(decodeURIComponent(location.hash.slice(1))); if(target) target.scrollIntoView(); }
})();
"""


def drilldown_section(evaluation: Evaluation, images: dict[str, str] | None = None) -> str:
    """The drill-down as an HTML fragment (data, controls, script). ``images``: product id -> data URI, for the
    products whose image is cached."""
    data = drilldown_data(evaluation, images or {})
    names = data["engines"]
    pair = f"{names[1]} minus {names[0]}" if len(names) > 1 else "none"
    options = [
        ("difference:asc", f"difference of {data['metric']} ({pair}), worst regression first"),
        ("difference:desc", f"difference of {data['metric']} ({pair}), best first"),
        ("mean:asc", f"{data['metric']}, lowest first"),
        ("text:asc", "query"),
    ]
    select = "".join(f'<option value="{value}">{html.escape(text)}</option>' for value, text in options)
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    return (
        f"<style>{STYLE}</style><h2>Queries, engine by engine</h2>"
        f'<div class="dd-controls"><label>sort by <select id="dd-sort">{select}</select></label></div>'
        f'<div id="dd-queries"></div><script type="application/json" id="dd-data">{payload}</script><script>{SCRIPT}</script>'
    )


def drilldown_data(evaluation: Evaluation, images: dict[str, str]) -> dict[str, Any]:
    metric, names = evaluation.main_metric, [run.name for run in evaluation.engines]
    products: dict[str, dict[str, str]] = {}
    queries = []
    for query in evaluation.queries:
        lists = {run.name: run.rankings.get(query.query_id, []) for run in evaluation.engines}
        shown = {p for ranking in lists.values() for p in ranking}
        for product_id in shown:
            product = evaluation.products[product_id]
            products[product_id] = {"id": product_id, "title": product.title, "stripe": _stripe(product_id), "image": images.get(product_id, "")}
        scores = {name: _score(evaluation, name, query.query_id, metric) for name in names}
        judged = {p: vars(evaluation.judged[(query.query_id, p)]) for p in shown if (query.query_id, p) in evaluation.judged}
        human_gains = evaluation.human_gains.get(query.query_id, {})
        queries.append({
            "id": query.query_id,
            "text": query.text,
            "metric": scores,
            "mean": sum(scores.values()) / len(scores),
            "difference": scores[names[1]] - scores[names[0]] if len(names) > 1 else 0.0,
            "lists": lists,
            "judged": judged,
            "human": {p: str(LABELS[g]) for p, g in human_gains.items() if p in shown},
        })
    return {"metric": metric, "engines": names, "queries": queries, "products": products}


def _score(evaluation: Evaluation, engine: str, query_id: str, metric: str) -> float:
    value = evaluation.metrics[engine].per_query[metric].get(query_id)
    return 0.0 if value is None or value != value else float(value)


def _stripe(product_id: str) -> str:
    """A colour of its own for each product, so one product is recognisable across the engines' columns."""
    hue = int(hashlib.sha256(product_id.encode()).hexdigest()[:6], 16) % 360
    return f"hsl({hue}, 65%, 50%)"
