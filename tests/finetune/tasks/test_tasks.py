"""Task readers on files in the exact GLUE / CoNLL formats, and featurisation."""

import numpy as np
import pytest

from finetune import tasks
from finetune.config import FinetuningConfig
from pretrain_data.tokenization import FullTokenizer
from tests.conftest import FIXTURES

# One file per (task, split), tab-separated as GLUE ships them.
GLUE = {
    ("cola", "train"): ["gj04\t1\t\tOur friends won't buy this.",
                        "gj04\t0\t*\tThey drank the pub."],
    ("cola", "test"): ["index\tsentence", "0\tBill whistled past the house."],
    ("mrpc", "train"): ["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String",
                        "1\t702876\t702977\tAmrozi accused his brother.\tHe called him a liar."],
    ("mrpc", "test"): ["index\t#1 ID\t#2 ID\t#1 String\t#2 String",
                       "0\t1089874\t1089925\tPCCW's chief.\tThe chief operating officer."],
    ("mnli", "dev_matched"): [
        "index\tpromptID\tpairID\tgenre\ts1b\ts2b\ts1p\ts2p\tsentence1\tsentence2\tlabel1\t"
        "gold_label",
        '0\t1\t1e\tgov\t(\t(\t(\t(\t"Quoted" start\tno "end\tneutral\tneutral'],
    ("mnli", "test_matched"): [
        "index\tpromptID\tpairID\tgenre\ts1b\ts2b\ts1p\ts2p\tsentence1\tsentence2",
        "0\t1\t1e\tgov\t(\t(\t(\t(\tHello there.\tGeneral hello."],
    ("mnli", "diagnostic"): ["index\tsentence1\tsentence2", "0\tThe cat sat.\tA cat sat."],
    ("sst", "train"): ["sentence\tlabel", "hide new secretions \t0", "a great film \t1"],
    ("sst", "test"): ["index\tsentence", "0\tuneasy mishmash"],
    ("rte", "dev"): ["index\tsentence1\tsentence2\tlabel",
                     "0\tDana Reeve died.\tChristopher Reeve had an accident.\tnot_entailment"],
    ("qnli", "train"): ["index\tquestion\tsentence\tlabel",
                        "0\tWhen?\tIn 1990.\tentailment"],
    ("qqp", "train"): ["id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate",
                       "133273\t213221\t213222\tHow is it?\tHow is that?\t1"],
    ("qqp", "test"): ["id\tquestion1\tquestion2", "0\tWhy?\tWhy not?"],
    ("sts", "train"): ["index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\t"
                       "sentence2\tscore",
                       "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane.\t"
                       "An air plane.\t4.000"],
    ("sts", "test"): ["index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\t"
                      "sentence2", "0\tmain-news\tMSRvid\t2012test\t0000\tnone\tnone\tA girl.\t"
                      "A boy."],
}


def write(data_dir, task, split, lines, ext=".tsv"):
    path = data_dir / "finetuning_data" / task / (split + ext)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def tokenizer():
    return FullTokenizer(str(FIXTURES / "vocab_tiny.txt"))


@pytest.fixture
def glue_dir(tmp_path):
    for (task, split), lines in GLUE.items():
        write(tmp_path, task, split, lines)
    return tmp_path


def make(data_dir, tokenizer, name, **kwargs):
    config = FinetuningConfig("m", str(data_dir), task_names=[name], **kwargs)
    return tasks.get_task(config, name, tokenizer)


@pytest.mark.parametrize("name, split, expected", [
    ("cola", "train", [(0, "Our friends won't buy this.", None, "1"),
                       (1, "They drank the pub.", None, "0")]),
    ("cola", "test", [(0, "Bill whistled past the house.", None, "0")]),
    ("mrpc", "train", [(0, "Amrozi accused his brother.", "He called him a liar.", "1"),
                       (1, "He called him a liar.", "Amrozi accused his brother.", "1")]),
    ("mrpc", "test", [(0, "PCCW's chief.", "The chief operating officer.", "0")]),
    ("mnli", "dev", [(0, '"Quoted" start', 'no "end', "neutral")]),
    ("mnli", "test_matched", [(0, "Hello there.", "General hello.", "contradiction")]),
    ("mnli", "diagnostic", [(0, "The cat sat.", "A cat sat.", "contradiction")]),
    ("sst", "train", [(0, "hide new secretions ", None, "0"), (1, "a great film ", None, "1")]),
    ("sst", "test", [(0, "uneasy mishmash", None, "0")]),
    ("rte", "dev", [(0, "Dana Reeve died.", "Christopher Reeve had an accident.",
                     "not_entailment")]),
    ("qnli", "train", [(0, "When?", "In 1990.", "entailment")]),
    ("qqp", "train", [(0, "How is it?", "How is that?", "1")]),
    ("qqp", "test", [(0, "Why?", "Why not?", "0")]),
    ("sts", "train", [(0, "A plane.", "An air plane.", 4.0),
                      (1, "An air plane.", "A plane.", 4.0)]),
    ("sts", "test", [(0, "A girl.", "A boy.", 0.0)]),
])
def test_glue_readers(glue_dir, tokenizer, name, split, expected):
    examples = make(glue_dir, tokenizer, name).get_examples(split)
    assert [(e.eid, e.text_a, e.text_b, e.label) for e in examples] == expected


def test_mnli_test_splits_and_no_doubling(glue_dir, tokenizer):
    task = make(glue_dir, tokenizer, "mnli")
    assert task.get_test_splits() == ["test_matched", "test_mismatched", "diagnostic"]
    assert len(make(glue_dir, tokenizer, "mrpc", double_unordered=False)
               .get_examples("train")) == 1


def test_malformed_row_and_missing_split(tmp_path, tokenizer):
    path = write(tmp_path, "rte", "train", ["index\tsentence1\tsentence2\tlabel",
                                            "0\ta\tb\tentailment", "1\tonly two"])
    with pytest.raises(ValueError, match=f"{path}:3: malformed rte row"):
        make(tmp_path, tokenizer, "rte").get_examples("train")
    write(tmp_path, "rte", "dev", ["index\tsentence1\tsentence2\tlabel", "0\ta\tb\tmaybe"])
    with pytest.raises(ValueError, match="dev.tsv:2: .*'maybe'"):
        make(tmp_path, tokenizer, "rte").get_examples("dev")
    with pytest.raises(FileNotFoundError, match="finetuning_data/rte/test.tsv"):
        make(tmp_path, tokenizer, "rte").get_examples("test")


def test_debug_reads_100_lines(tmp_path, tokenizer):
    write(tmp_path, "sst", "train", ["sentence\tlabel"] + ["good\t1"] * 150)
    assert len(make(tmp_path, tokenizer, "sst", debug=True).get_examples("train")) == 99


def test_classification_features(glue_dir, tokenizer):
    task = make(glue_dir, tokenizer, "rte", max_seq_length=12)
    ids = tokenizer.vocab
    examples = [tasks.Example(7, "rte", "a b c d e f g", "x y", "not_entailment")]
    f = task.featurize(examples)
    # 12 - 3 = 9 tokens: A (7) + B (2) fits exactly
    tokens = ["[CLS]"] + list("abcdefg") + ["[SEP]", "x", "y", "[SEP]"]
    assert f["input_ids"][0].tolist() == [ids[t] for t in tokens][:12]
    examples = [tasks.Example(7, "rte", "a b c d e f g h i j", "x y z", "entailment")]
    f = task.featurize(examples)
    # longer A is popped until A=6, B=3 (ties pop B): [CLS] 6 [SEP] 3 [SEP] = 12
    tokens = ["[CLS]"] + list("abcdef") + ["[SEP]", "x", "y", "z", "[SEP]"]
    assert f["input_ids"][0].tolist() == [ids[t] for t in tokens]
    assert f["segment_ids"][0].tolist() == [0] * 8 + [1] * 4
    assert (f["rte_label_ids"].tolist(), f["rte_eid"].tolist(), f["task_id"].tolist()) == (
        [0], [7], [0])
    single = make(glue_dir, tokenizer, "sst", max_seq_length=6).featurize(
        [tasks.Example(0, "sst", "a b c d e f", None, "1")])
    assert single["input_ids"][0].tolist() == [ids[t] for t in ["[CLS]", *"abcd", "[SEP]"]]
    assert single["input_mask"][0].tolist() == [1] * 6


def test_sts_targets_are_divided_by_5(glue_dir, tokenizer):
    task = make(glue_dir, tokenizer, "sts")
    f = task.featurize(task.get_examples("train"))
    np.testing.assert_allclose(f["sts_targets"], [0.8, 0.8])


CONLL = ["-DOCSTART- -X- -X- O", "", "Confidence NN B-NP", "in IN B-PP", "the DT B-NP",
         "pound NN I-NP", "", "He PRP B-NP", "runs VBZ B-VP"]


def test_chunk_reader_and_features(tmp_path, tokenizer):
    write(tmp_path, "chunk", "train", CONLL, ext=".txt")
    write(tmp_path, "chunk", "dev", ["a DT B-ADJP", ""], ext=".txt")
    task = make(tmp_path, tokenizer, "chunk", max_seq_length=10)
    assert task.read_sentences("train") == [
        (["Confidence", "in", "the", "pound"], ["B-NP", "B-PP", "B-NP", "I-NP"]),
        (["He", "runs"], ["B-NP", "B-VP"])]
    assert sorted(task.label_mapping) == ["B-NP", "E-NP", "S-ADJP", "S-NP", "S-PP", "S-VP"]
    examples = task.get_examples("train")
    m = task.label_mapping
    assert examples[0].label == [m["S-NP"], m["S-PP"], m["B-NP"], m["E-NP"]]
    f = task.featurize(examples[1:])
    he, runs = tokenizer.tokenize_to_id_lists(["he", "runs"])
    ids = [tokenizer.vocab["[CLS]"]] + he + runs + [tokenizer.vocab["[SEP]"]]
    assert f["input_ids"][0].tolist() == ids + [0] * (10 - len(ids))
    assert f["segment_ids"][0].tolist() == [1] * len(ids) + [0] * (10 - len(ids))
    assert f["chunk_labeled_positions"][0, :3].tolist() == [1, 1 + len(he), 0]
    assert f["chunk_labels_mask"][0, :3].tolist() == [1.0, 1.0, 0.0]


def test_chunk_truncation(tmp_path, tokenizer):
    write(tmp_path, "chunk", "train", ["a X B-NP"] + ["a X I-NP"] * 5, ext=".txt")
    task = make(tmp_path, tokenizer, "chunk", max_seq_length=10)
    f = task.featurize(task.get_examples("train"))
    # (6 + 2) + len(ids) + 1 > 10 once 2 ids are in: [CLS] a [SEP]
    assert f["input_mask"][0].sum() == 3
    assert f["chunk_labels_mask"][0].sum() == 1.0
    assert f["chunk_labels"][0].tolist()[:7] == [task.label_mapping[t] for t in
                                                 ["B-NP"] + ["I-NP"] * 4 + ["E-NP"]] + [0]


def test_unknown_task(tmp_path, tokenizer):
    with pytest.raises(ValueError, match="Unknown task 'sqad'; known tasks: chunk, cola"):
        make(tmp_path, tokenizer, "sqad")


def test_tfds_glue_source(tokenizer):
    import tensorflow_datasets as tfds

    mnli = make("/nonexistent", tokenizer, "mnli")
    mrpc = make("/nonexistent", tokenizer, "mrpc")
    with tfds.testing.mock_data(num_examples=3, policy=tfds.testing.MockPolicy.USE_CODE):
        dev = tasks.tfds_examples(mnli, "dev")
        test = tasks.tfds_examples(mnli, "test_mismatched")
        train = tasks.tfds_examples(mrpc, "train")
    assert len(dev) == 3 and all(e.label in mnli.label_list for e in dev)
    assert {e.label for e in test} == {"contradiction"}  # the dummy label
    assert len(train) == 6 and (train[3].text_a, train[3].text_b) == (train[0].text_b,
                                                                       train[0].text_a)
    assert mnli.featurize(dev)["input_ids"].shape == (3, 128)
