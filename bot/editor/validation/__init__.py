"""`kefu validate`: the knowledge editors' data check; each finding names file, line and a fix.

The checks, in the order `validate_project` runs them:

1. YAML syntax of every file under `data/`, `domain.yml` and `config.yml` (`check_yaml_syntax`);
   later checks skip a broken file and go on with the rest.
2. Stories and rules name only known intents (with NLU examples), actions, forms and slots
   (`check_dialogue`).
3. Entity spans start and end on jieba token boundaries (`check_entity_spans`).
4. No example is identical or nearly identical under two intents (`check_duplicate_examples`).
5. Every intent has enough examples in each language (`check_examples_per_language`).
6. Knowledge entries load, and no two entries share a question or ask nearly the same
   question with different answers (`check_knowledge`).
7. Rasa's own `rasa data validate` (`run_rasa_validate`), only when 1-2 found no error.

Every check is a function of explicit paths and parameters, so tests run them on tmp folders.
Modules: `findings` (what a check reports), `yaml_syntax` (1), `dialogue` (2), `nlu` (3-5),
`knowledge` (6), `similarity` (near-identical vectors), `runner` (7 and `validate_project`).
"""
