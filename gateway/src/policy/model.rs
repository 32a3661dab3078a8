//! The learned half of the content policy: a logistic regression over hashed features (see `features`), trained by
//! `gateway/policy-model/train.py` from the labelled messages in that folder. It recognises marketing that uses none
//! of the phrases in `rules.toml`; the rules stay, and whichever of the two says block, blocks.
//!
//! The weights are compiled in (`model.bin`: a short text header, then 2^bits little-endian i16 weights) and parsed
//! once. A file that does not parse is logged and the policy runs on its rules alone; a test keeps that from
//! shipping.
use std::sync::OnceLock;

use super::features::{self, Source, Token};

pub const REASON_CODE: &str = "marketing_language_model";

pub struct Model {
    bits: u32,
    scale: f64,
    bias: f64,
    weights: &'static [u8],
    /// SHA-256 of the files the weights were trained from, as train.py computed it.
    pub data_sha256: String,
}

/// A scored message: the model's probability that it is marketing and its tokens (kept for [`Model::explain`]).
pub struct Scored {
    pub probability: f64,
    tokens: Vec<Token>,
    count: usize,
}

impl Model {
    pub fn parse(file: &'static [u8]) -> Result<Model, String> {
        let header_end = file.windows(2).position(|w| w == b"\n\n").ok_or("no end of header")?;
        let header = std::str::from_utf8(&file[..header_end]).map_err(|_| "header is not UTF-8")?;
        let mut lines = header.lines();
        if lines.next() != Some("WAG-POLICY-MODEL 1") {
            return Err("not a version 1 policy model".into());
        }
        let (mut bits, mut scale, mut bias, mut digest) = (None, None, None, None);
        for line in lines {
            let (key, value) = line.split_once(' ').ok_or_else(|| format!("header line {line:?}"))?;
            match key {
                "bits" => bits = value.parse::<u32>().ok(),
                "scale" => scale = value.parse::<f64>().ok(),
                "bias" => bias = value.parse::<f64>().ok(),
                "data_sha256" => digest = Some(value.to_string()),
                _ => return Err(format!("unknown header field {key:?}")),
            }
        }
        let bits = bits.filter(|&b| b == features::BITS).ok_or("bits missing or not what features.rs hashes to")?;
        let weights = &file[header_end + 2..];
        if weights.len() != 2 << bits {
            return Err(format!("{} weight bytes, want {}", weights.len(), 2u64 << bits));
        }
        Ok(Model {
            bits,
            scale: scale.filter(|s| s.is_finite()).ok_or("scale missing")?,
            bias: bias.filter(|b| b.is_finite()).ok_or("bias missing")?,
            weights,
            data_sha256: digest.ok_or("data_sha256 missing")?,
        })
    }

    fn weight(&self, index: u32) -> f64 {
        let at = (index as usize & ((1 << self.bits) - 1)) * 2;
        f64::from(i16::from_le_bytes([self.weights[at], self.weights[at + 1]])) * self.scale
    }

    /// The log-odds the same way train.py computes them (same operations in the same order).
    fn logit(&self, indices: &[u32]) -> f64 {
        let sum: i64 = indices
            .iter()
            .map(|&i| {
                let at = (i as usize & ((1 << self.bits) - 1)) * 2;
                i64::from(i16::from_le_bytes([self.weights[at], self.weights[at + 1]]))
            })
            .sum();
        self.bias + self.scale * sum as f64 / (indices.len().max(features::NORM_FLOOR) as f64).sqrt()
    }

    pub fn score(&self, text: &str) -> Scored {
        let tokens = features::tokens(text);
        let indices = features::indices(text, &tokens);
        let probability = 1.0 / (1.0 + (-self.logit(&indices)).exp());
        Scored { probability, tokens, count: indices.len() }
    }

    /// Up to `max` words or phrases of `text` that pushed the score up most, as written in the message (adjacent
    /// words merge into one phrase). Numbers, codes and links are never shown: they are not features.
    pub fn explain(&self, text: &str, scored: &Scored, max: usize) -> Vec<String> {
        let toks = &scored.tokens;
        let norm = (scored.count.max(features::NORM_FLOOR) as f64).sqrt();
        let mut push = vec![0.0f64; toks.len()];
        features::visit(text, toks, |index, source| {
            let w = self.weight(index) / norm;
            match source {
                Source::One(k) => push[k] += w,
                Source::Pair(a, b) => {
                    push[a] += w / 2.0;
                    push[b] += w / 2.0;
                }
                Source::Message => {}
            }
        });
        let mut order: Vec<usize> = (0..toks.len()).filter(|&k| push[k] > 0.0 && !toks[k].is_placeholder()).collect();
        order.sort_by(|&a, &b| push[b].total_cmp(&push[a]));
        order.truncate(max);
        order.sort_unstable();
        // Neighbouring picks read better as one phrase; the phrase ranks by its words' sum.
        let mut phrases: Vec<(f64, usize, usize)> = Vec::new();
        for k in order {
            match phrases.last_mut() {
                Some((total, _, end)) if *end + 1 == k => {
                    *total += push[k];
                    *end = k;
                }
                _ => phrases.push((push[k], k, k)),
            }
        }
        phrases.sort_by(|a, b| b.0.total_cmp(&a.0));
        phrases.into_iter().map(|(_, a, b)| text[toks[a].span.start..toks[b].span.end].to_string()).collect()
    }
}

/// The compiled-in model, or `None` (after logging why) when its file is unusable.
pub fn model() -> Option<&'static Model> {
    static MODEL: OnceLock<Option<Model>> = OnceLock::new();
    MODEL
        .get_or_init(|| match Model::parse(include_bytes!("model.bin")) {
            Ok(model) => Some(model),
            Err(e) => {
                tracing::error!(error = %e, "policy/model.bin is unusable: content is judged by the rules alone");
                None
            }
        })
        .as_ref()
}

/// Model probability as policy points (0–100), on the same scale as the thresholds.
pub fn points(probability: f64) -> u8 {
    (probability * 100.0).round().clamp(0.0, 100.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled() -> &'static Model {
        model().expect("policy/model.bin parses")
    }

    #[test]
    fn weights_parse_and_match_python() {
        let m = compiled();
        for (text, _, indices, logit) in features::tests::fixture() {
            let got = m.logit(&indices);
            assert!((got - logit).abs() < 1e-5, "{text:?}: rust {got} python {logit}");
            assert_eq!(features::indices(&text, &features::tokens(&text)), indices);
        }
    }

    #[test]
    fn bad_files_are_refused() {
        assert!(Model::parse(b"nonsense").is_err());
        assert!(Model::parse(b"WAG-POLICY-MODEL 1\nbits 18\nscale 1\nbias 0\ndata_sha256 x\n\n\x01\x02").is_err());
        assert!(Model::parse(b"WAG-POLICY-MODEL 2\n\n").is_err());
    }

    /// The weights record the SHA-256 of what they were trained from (data, corpus, scripts), computed here as
    /// train.py does; a changed data file without retraining fails here.
    #[test]
    fn weights_are_trained_from_the_committed_data() {
        use sha2::{Digest, Sha256};
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let data = root.join("policy-model/data");
        let mut files: Vec<std::path::PathBuf> =
            std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
        files.sort();
        for extra in [
            "tests/corpus/marketing.txt",
            "tests/corpus/transactional.txt",
            "policy-model/features.py",
            "policy-model/generate.py",
            "policy-model/train.py",
        ] {
            files.push(root.join(extra));
        }
        let mut h = Sha256::new();
        for path in files {
            let name = path.strip_prefix(root).unwrap().to_str().unwrap().replace('\\', "/");
            h.update(name.as_bytes());
            h.update(b"\0");
            h.update(std::fs::read(&path).unwrap());
            h.update(b"\0");
        }
        assert_eq!(
            hex::encode(h.finalize()),
            compiled().data_sha256,
            "gateway/policy-model changed since model.bin was trained: run gateway/policy-model/train.py (README there)"
        );
    }

    #[test]
    fn explains_in_the_message_own_words() {
        let m = compiled();
        let text = "This Eid, treat the whole family to our new lamb platter with two desserts on the house!";
        let words = m.explain(text, &m.score(text), 5);
        assert!((1..=5).contains(&words.len()), "{words:?}");
        assert!(words.iter().all(|w| text.contains(w.as_str())), "{words:?}");
        let otp = "Your code is 482913";
        assert!(m.explain(otp, &m.score(otp), 5).iter().all(|w| !w.contains("482913")));
    }
}
