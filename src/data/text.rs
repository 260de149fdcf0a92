//! Documents as bags of words: a folder with one subfolder of plain-text files per class (the
//! 20 Newsgroups "bydate" layout). Tokens are runs of ASCII letters, lower-cased, at least two
//! long and not stop words; e-mail headers are dropped except the subject line. The vocabulary
//! is the N most frequent tokens of the *training* folder (ties alphabetical), so the test
//! split is counted against the same words.
//!
//! Representation: x_i = log(1 + count_i) / max_j log(1 + count_j), in [0, 1] per document.
//! Why: retrieval compares documents by direction (cosine), so the document length must not
//! matter, and the log damps words repeated many times in one post (quoted replies, code); the
//! [0, 1] range lets the autoencoder use a sigmoid output with binary cross-entropy, the
//! "BCE on normalised counts" model, which trains stably where a multinomial output over 2,000
//! words would need a softmax the library's losses do not have. LSA is fitted on the same x.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::data::{Dataset, Matrix, ValueKind};
use crate::error::{Error, IoContext, Result};

/// The vocabulary size when none is given (Hinton & Salakhutdinov used 2,000 words).
pub const DEFAULT_VOCABULARY: usize = 2000;

/// English stop words (NLTK's list, plus a few e-mail fixtures: "re", "edu", "com").
const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "ain",
    "all",
    "am",
    "an",
    "and",
    "any",
    "are",
    "aren",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "com",
    "couldn",
    "d",
    "did",
    "didn",
    "do",
    "does",
    "doesn",
    "doing",
    "don",
    "down",
    "during",
    "each",
    "edu",
    "few",
    "for",
    "from",
    "further",
    "had",
    "hadn",
    "has",
    "hasn",
    "have",
    "haven",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "isn",
    "it",
    "its",
    "itself",
    "just",
    "ll",
    "m",
    "ma",
    "me",
    "mightn",
    "more",
    "most",
    "mustn",
    "my",
    "myself",
    "needn",
    "no",
    "nor",
    "not",
    "now",
    "o",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "re",
    "s",
    "same",
    "shan",
    "she",
    "should",
    "shouldn",
    "so",
    "some",
    "such",
    "t",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "ve",
    "very",
    "was",
    "wasn",
    "we",
    "were",
    "weren",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "won",
    "would",
    "wouldn",
    "y",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
];

fn is_stop_word(w: &str) -> bool {
    STOP_WORDS.binary_search(&w).is_ok()
}

/// The body of a message: lines after the header block, plus the subject.
fn strip_headers(text: &str) -> String {
    match text.split_once("\n\n") {
        Some((head, body))
            if head
                .lines()
                .all(|l| l.contains(':') || l.starts_with([' ', '\t'])) =>
        {
            let subject = head
                .lines()
                .find_map(|l| l.strip_prefix("Subject:"))
                .unwrap_or("");
            format!("{subject}\n{body}")
        }
        _ => text.to_string(),
    }
}

/// Lower-cased runs of ASCII letters, two or more long, without stop words.
pub fn tokenize(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_alphabetic())
        .filter(|t| t.len() >= 2)
        .map(|t| t.to_ascii_lowercase())
        .filter(|t| !is_stop_word(t))
        .collect()
}

/// Token counts of every document of a class-per-folder tree, with labels and class names.
struct Corpus {
    docs: Vec<HashMap<String, u32>>,
    labels: Vec<u32>,
    class_names: Vec<String>,
}

fn sorted_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v = std::fs::read_dir(dir)
        .at(dir)?
        .map(|e| e.map(|e| e.path()).at(dir))
        .collect::<Result<Vec<_>>>()?;
    v.sort();
    Ok(v)
}

fn read_corpus(dir: &Path) -> Result<Corpus> {
    if !dir.is_dir() {
        return Err(Error::bad_file(
            dir,
            "is not a folder of documents (one subfolder per class); unpack 20news-bydate.tar.gz first",
        ));
    }
    let classes: Vec<PathBuf> = sorted_dir(dir)?
        .into_iter()
        .filter(|p| p.is_dir())
        .collect();
    if classes.is_empty() {
        return Err(Error::bad_file(dir, "has no class subfolders"));
    }
    let mut corpus = Corpus {
        docs: Vec::new(),
        labels: Vec::new(),
        class_names: Vec::new(),
    };
    for (k, class) in classes.iter().enumerate() {
        corpus.class_names.push(
            class
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string(),
        );
        for file in sorted_dir(class)?.into_iter().filter(|p| p.is_file()) {
            let bytes = std::fs::read(&file).at(&file)?;
            // Posts are mostly ASCII with some Latin-1; only ASCII letters make tokens.
            let text = String::from_utf8_lossy(&bytes);
            let mut counts = HashMap::new();
            for t in tokenize(&strip_headers(&text)) {
                *counts.entry(t).or_insert(0u32) += 1;
            }
            corpus.docs.push(counts);
            corpus.labels.push(k as u32);
        }
    }
    if corpus.docs.is_empty() {
        return Err(Error::bad_file(dir, "holds no documents"));
    }
    Ok(corpus)
}

/// The `n` most frequent tokens (total count; ties alphabetical) of the documents in `dir`.
pub fn vocabulary(dir: &Path, n: usize) -> Result<Vec<String>> {
    let corpus = read_corpus(dir)?;
    let mut totals: HashMap<&str, u64> = HashMap::new();
    for d in &corpus.docs {
        for (w, c) in d {
            *totals.entry(w.as_str()).or_insert(0) += *c as u64;
        }
    }
    let mut words: Vec<(&str, u64)> = totals.into_iter().collect();
    words.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    Ok(words
        .into_iter()
        .take(n)
        .map(|(w, _)| w.to_string())
        .collect())
}

/// The normalised bag of words of one document's counts (see the module documentation).
pub fn bag_of_words(counts: &HashMap<String, u32>, index: &HashMap<&str, usize>) -> Vec<f32> {
    let mut x = vec![0f32; index.len()];
    for (w, c) in counts {
        if let Some(&j) = index.get(w.as_str()) {
            x[j] = (1.0 + *c as f32).ln();
        }
    }
    let max = x.iter().cloned().fold(0f32, f32::max);
    if max > 0.0 {
        x.iter_mut().for_each(|v| *v /= max);
    }
    x
}

/// Loads the documents of `dir` as bags of words over `vocab`.
pub fn load(dir: &Path, vocab: &[String]) -> Result<Dataset> {
    let corpus = read_corpus(dir)?;
    let index: HashMap<&str, usize> = vocab
        .iter()
        .enumerate()
        .map(|(i, w)| (w.as_str(), i))
        .collect();
    let mut data = Vec::with_capacity(corpus.docs.len() * vocab.len());
    for d in &corpus.docs {
        data.extend(bag_of_words(d, &index));
    }
    Ok(Dataset {
        x: Matrix::new(corpus.docs.len(), vocab.len(), data)?,
        labels: Some(corpus.labels),
        class_names: Some(corpus.class_names),
        sample_shape: vec![vocab.len()],
        value_kind: ValueKind::Float,
        origin: format!("text:{} ({} words)", dir.display(), vocab.len()),
    })
}

#[cfg(test)]
mod tests {
    /// `is_stop_word` searches the list by bisection, so it must stay sorted.
    #[test]
    fn stop_words_are_sorted_and_unique() {
        assert!(super::STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
        assert!(super::is_stop_word("the") && !super::is_stop_word("orbit"));
    }
}
