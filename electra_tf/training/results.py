"""The one writer of results files: a JSON file for programs, a text file for people."""

from electra_common import files


def write_results(json_path, txt_path, results, text):
    """Writes both files atomically (a reader never sees half of either).

    Args:
        json_path, txt_path: the two files.
        results: what goes into the JSON file.
        text: the text file's content (lines; a final newline is added).
    """
    files.write_json(json_path, results, sort_keys=True)
    files.write_text(txt_path, text.rstrip("\n") + "\n")
