"""Retrieval quality on a judged test collection: the Cranfield files and the metrics.

Pure functions (no I/O but reading the collection's files), unit-tested in test_s3c_eval.py.
Relevance follows the collection's README: codes 1 (complete answer) to 4 (minimal interest)
are relevant with the graded gain 5 - code; 5 and -1 are not relevant.
"""

import math
import re


def parse_fields(text):
    """Records of a Cranfield-style file (`.I id` then `.X` fields) as (id, {letter: text})."""
    records = []
    current = None
    field = None
    for line in text.splitlines():
        marker = re.match(r"^\.([A-Z])(?:\s+(\S+))?\s*$", line)
        if marker and marker.group(1) == "I":
            current = (marker.group(2), {})
            records.append(current)
            field = None
        elif marker and current is not None:
            field = marker.group(1)
            current[1].setdefault(field, "")
        elif current is not None and field is not None:
            joined = current[1][field]
            current[1][field] = (joined + " " + line.strip()).strip() if joined else line.strip()
    return records


def documents(text):
    """The documents of `cran.all.1400`: (id, title, abstract)."""
    return [(int(doc_id), fields.get("T", ""), fields.get("W", ""))
            for doc_id, fields in parse_fields(text)]


def queries(text):
    """The queries of `cran.qry`, numbered 1.. in file order (as `cranqrel` numbers them, not by
    their `.I`, which has gaps): (number, text)."""
    return [(number, fields.get("W", "")) for number, (_, fields)
            in enumerate(parse_fields(text), start=1)]


def judgments(text):
    """`cranqrel` as {query: {doc: gain}}, gain 5 - code for codes 1-4 (others left out)."""
    judged = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        query, doc, code = int(parts[0]), int(parts[1]), int(parts[2])
        if 1 <= code <= 4:
            judged.setdefault(query, {})[doc] = 5 - code
    return judged


def plain_query(text):
    """A query's words only: punctuation (which the query syntax would read as operators,
    fields or phrases) becomes spaces, and upper-case operators are lowered."""
    words = re.sub(r"[^0-9A-Za-z]+", " ", text).split()
    return " ".join(word.lower() if word in ("AND", "OR", "NOT") else word for word in words)


def ndcg_at(ranked, gains, k=10):
    """nDCG@k of `ranked` doc ids with graded `gains` ({doc: gain}, linear gain, log2 discount);
    0 when nothing is relevant."""
    def dcg(values):
        return sum(gain / math.log2(rank + 2) for rank, gain in enumerate(values[:k]))
    ideal = dcg(sorted(gains.values(), reverse=True))
    if ideal == 0:
        return 0.0
    return dcg([gains.get(doc, 0) for doc in ranked]) / ideal


def average_precision_at(ranked, gains, k=100):
    """Average precision over the first `k` of `ranked` (relevant: any gain > 0), divided by
    all relevant documents; 0 when there are none."""
    relevant = {doc for doc, gain in gains.items() if gain > 0}
    if not relevant:
        return 0.0
    found = 0
    total = 0.0
    for rank, doc in enumerate(ranked[:k], start=1):
        if doc in relevant:
            found += 1
            total += found / rank
    return total / len(relevant)


def recall_at(ranked, gains, k=10):
    """Share of the relevant documents among the first `k` of `ranked`; 0 when none are."""
    relevant = {doc for doc, gain in gains.items() if gain > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def dedup(ranked):
    """`ranked` with each document once, at its best rank (several passages of one document)."""
    seen = set()
    return [doc for doc in ranked if not (doc in seen or seen.add(doc))]


def evaluate(runs, judged):
    """Mean nDCG@10, MAP@100 and R@10 of `runs` ({query: ranked doc ids}) over the judged
    queries that have a relevant document; also how many queries counted."""
    counted = [query for query in sorted(judged) if judged[query]]
    if not counted:
        return {"ndcg@10": 0.0, "map@100": 0.0, "r@10": 0.0, "queries": 0}
    totals = {"ndcg@10": 0.0, "map@100": 0.0, "r@10": 0.0}
    for query in counted:
        ranked = dedup(runs.get(query, []))
        totals["ndcg@10"] += ndcg_at(ranked, judged[query])
        totals["map@100"] += average_precision_at(ranked, judged[query])
        totals["r@10"] += recall_at(ranked, judged[query])
    result = {name: total / len(counted) for name, total in totals.items()}
    result["queries"] = len(counted)
    return result


def markdown_table(results):
    """`results` ({mode: evaluate(...)}) as the Markdown table the docs show."""
    lines = ["| mode | nDCG@10 | MAP@100 | R@10 | queries |", "|---|---|---|---|---|"]
    for mode, result in results.items():
        lines.append(f"| {mode} | {result['ndcg@10']:.3f} | {result['map@100']:.3f} | "
                     f"{result['r@10']:.3f} | {result['queries']} |")
    return "\n".join(lines)


def below(results, floors):
    """The modes of `results` whose nDCG@10 is below their floor in `floors`, as messages."""
    return [f"{mode}: nDCG@10 {results[mode]['ndcg@10']:.3f} is below {floor}"
            for mode, floor in floors.items()
            if mode in results and results[mode]["ndcg@10"] < floor]
