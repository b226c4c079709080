"""The predictions table: its columns and rows (``columns``), its file formats (``formats``) and the writer that
appends rows as they come and resumes (``journal``). No TensorFlow here."""
from .columns import answers, columns, face_answers, photo_rows

__all__ = ["answers", "columns", "face_answers", "photo_rows"]
