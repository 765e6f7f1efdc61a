"""Spreadsheet round trip of NLU examples and knowledge entries, for editors who do not write YAML.

`export.export_workbook` writes the rows of `data/nlu/*.yml` and `data/knowledge/*.yml` to one
XLSX workbook (sheets `nlu` and `knowledge`) or to one CSV. `importing.import_workbook` reads such
a spreadsheet back: it is the whole truth for its table (a row removed removes the example or
entry), data files whose content does not change are not touched, changed files are rewritten
with ruamel.yaml's round trip (comments, key order and `|` blocks stay) after the result was
validated, all of them or none. An export followed by an import changes nothing.

Modules: `model` (tables, columns, errors, summaries), `export`, `cells` (reading a sheet back),
`rows` (checking its rows), `round_trip` (ruamel.yaml load and faithful dump), `nlu_files` and
`knowledge_files` (the two kinds of data file), `importing` (plan, validate, write).
"""
