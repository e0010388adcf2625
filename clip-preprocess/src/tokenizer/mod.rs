//! CLIP's tokenizer: cleaning (ftfy, HTML unescape, whitespace, lowercase) and BPE.
