"""Step 7 of the loop: how good are the engines? IR metrics per engine under the judge's labels, comparisons with
significance, validity against human labels, and the report (Markdown, HTML with plots, JSON, TREC files)."""
