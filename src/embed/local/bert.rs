//! The BERT encoder of a sentence-transformers model, on candle's CPU ops, over a batch packed
//! without padding.
//!
//! candle-transformers' `BertModel` pads every text of a batch to the longest one and masks the
//! padding out of every attention score. Here the word pieces of a batch lie end to end, one row
//! each (`[pieces, hidden]`): the dense layers, which are nearly all the arithmetic, never
//! compute a padding row, and attention runs text by text with nothing to mask. The rest is the
//! same model: query, key and value as one matrix product (the scale 1/√head folded into the
//! query weights at load), candle-nn's fused softmax and layer norm, and GELU with erf (the
//! model's `hidden_act: gelu`) from a rational approximation accurate to 1e-6 instead of libm's
//! scalar `erff`.
//!
//! Everything element-wise on big tensors (the embeddings' sum, each dense layer's bias, GELU and
//! residual) is done here, in one pass on the calling thread: candle's own element-wise ops run
//! tensors of 64 Ki elements or more on a spinning thread pool of its own, outside the
//! embedding pool, which took a second CPU whatever `threads` said. Matrix products (gemm),
//! softmax and layer norm run on the rayon pool they are called from: the embedding pool.

use candle_core::{CpuStorage, D, DType, Device, InplaceOp1, Layout, Result, Storage, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, HiddenAct};

/// The encoder's weights.
pub struct Bert {
    /// The embedding tables, `[rows, hidden]` row after row.
    words: Vec<f32>,
    positions: Vec<f32>,
    token_types: Vec<f32>,
    hidden: usize,
    norm: Norm,
    layers: Vec<Layer>,
    heads: usize,
}

/// One transformer layer.
struct Layer {
    /// Query, key and value in one: `[hidden] → [3 × hidden]`.
    qkv: Dense,
    attention_out: Dense,
    attention_norm: Norm,
    up: Dense,
    down: Dense,
    output_norm: Norm,
}

/// A dense layer with a bias: `x · weightᵀ + bias`.
struct Dense {
    /// `[outputs, inputs]`.
    weight: Tensor,
    bias: Vec<f32>,
}

/// Layer normalisation with a weight and a bias.
struct Norm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl Bert {
    /// Loads the weights of a BERT model in the Hugging Face layout (`embeddings.*`,
    /// `encoder.layer.N.*`, under a `bert.` prefix or not).
    pub fn load(vars: VarBuilder, config: &Config) -> Result<Self> {
        if config.hidden_act != HiddenAct::Gelu {
            candle_core::bail!(
                "hidden_act {:?} (this encoder runs `gelu`, as BERT sentence models do)",
                config.hidden_act
            );
        }
        let vars = if vars.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vars.pp("bert")
        } else {
            vars
        };
        let (hidden, heads) = (config.hidden_size, config.num_attention_heads);
        if heads == 0 || hidden % heads != 0 {
            candle_core::bail!("hidden_size {hidden} is not a multiple of {heads} heads");
        }
        let norm = |vars: VarBuilder| Norm::load(vars, hidden, config.layer_norm_eps);
        let embeddings = vars.pp("embeddings");
        let table = |name: &str, rows: usize| -> Result<Vec<f32>> {
            embeddings
                .get((rows, hidden), name)?
                .flatten_all()?
                .to_vec1()
        };
        let layers = (0..config.num_hidden_layers)
            .map(|n| {
                let layer = vars.pp(format!("encoder.layer.{n}"));
                let attention = layer.pp("attention");
                Ok(Layer {
                    qkv: fused_qkv(attention.pp("self"), hidden, heads)?,
                    attention_out: Dense::load(attention.pp("output.dense"), hidden, hidden)?,
                    attention_norm: norm(attention.pp("output.LayerNorm"))?,
                    up: Dense::load(
                        layer.pp("intermediate.dense"),
                        hidden,
                        config.intermediate_size,
                    )?,
                    down: Dense::load(layer.pp("output.dense"), config.intermediate_size, hidden)?,
                    output_norm: norm(layer.pp("output.LayerNorm"))?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            words: table("word_embeddings.weight", config.vocab_size)?,
            positions: table("position_embeddings.weight", config.max_position_embeddings)?,
            token_types: table("token_type_embeddings.weight", config.type_vocab_size)?,
            hidden,
            norm: norm(embeddings.pp("LayerNorm"))?,
            layers,
            heads,
        })
    }

    /// The last hidden states of a packed batch: `ids` and `types` hold the word pieces of the
    /// texts one after another, `lengths` how many each text has. `[pieces, hidden]`.
    pub fn forward<'a>(&'a self, ids: &[u32], types: &[u32], lengths: &[usize]) -> Result<Tensor> {
        let hidden = self.hidden;
        let row = |table: &'a [f32], n: usize, name: &str| -> Result<&'a [f32]> {
            table
                .get(n * hidden..(n + 1) * hidden)
                .ok_or_else(|| candle_core::Error::Msg(format!("{name} {n} is past the table")))
        };
        let positions = lengths.iter().flat_map(|&n| 0..n);
        let mut embedded = Vec::with_capacity(ids.len() * hidden);
        for ((&id, &kind), position) in ids.iter().zip(types).zip(positions) {
            let word = row(&self.words, id as usize, "word piece")?;
            let kind = row(&self.token_types, kind as usize, "token type")?;
            let position = row(&self.positions, position, "position")?;
            embedded.extend((0..hidden).map(|i| word[i] + kind[i] + position[i]));
        }
        let embedded = Tensor::from_vec(embedded, (ids.len(), hidden), &Device::Cpu)?;
        let mut hidden = self.norm.forward(&embedded)?;
        for layer in &self.layers {
            hidden = layer.forward(&hidden, lengths, self.heads)?;
        }
        Ok(hidden)
    }
}

impl Layer {
    fn forward(&self, x: &Tensor, lengths: &[usize], heads: usize) -> Result<Tensor> {
        let context = attention(&self.qkv.forward(x, Then::Nothing)?, lengths, heads)?;
        let x = self
            .attention_norm
            .forward(&self.attention_out.forward(&context, Then::Add(x))?)?;
        let inner = self.up.forward(&x, Then::Gelu)?;
        self.output_norm
            .forward(&self.down.forward(&inner, Then::Add(&x))?)
    }
}

/// Self-attention of each text of the batch over its own word pieces. `qkv` is
/// `[pieces, 3 × hidden]`, the query already scaled; the answer is `[pieces, hidden]`.
fn attention(qkv: &Tensor, lengths: &[usize], heads: usize) -> Result<Tensor> {
    let hidden = qkv.dim(1)? / 3;
    let mut start = 0;
    let mut texts = Vec::with_capacity(lengths.len());
    for &length in lengths.iter().filter(|&&length| length > 0) {
        // [3 × heads, length, head size]: the queries of every head, then the keys, the values.
        let per_head = qkv
            .narrow(0, start, length)?
            .reshape((length, 3 * heads, hidden / heads))?
            .transpose(0, 1)?
            .contiguous()?;
        let query = per_head.narrow(0, 0, heads)?;
        let key = per_head.narrow(0, heads, heads)?;
        let value = per_head.narrow(0, 2 * heads, heads)?;
        let weights = candle_nn::ops::softmax_last_dim(&query.matmul(&key.t()?)?)?;
        texts.push(
            weights
                .matmul(&value)?
                .transpose(0, 1)?
                .reshape((length, hidden))?,
        );
        start += length;
    }
    if texts.is_empty() {
        return qkv.narrow(1, 0, hidden);
    }
    Tensor::cat(&texts, 0)
}

/// What follows a dense layer's bias, element by element.
#[derive(Clone, Copy)]
enum Then<'a> {
    Nothing,
    /// GELU.
    Gelu,
    /// A residual: a tensor of the same shape, added.
    Add(&'a Tensor),
}

impl Dense {
    /// The layer `[inputs] → [outputs]` of `vars` (`weight`, `bias`).
    fn load(vars: VarBuilder, inputs: usize, outputs: usize) -> Result<Self> {
        Ok(Self {
            weight: vars.get((outputs, inputs), "weight")?,
            bias: vars.get(outputs, "bias")?.to_vec1()?,
        })
    }

    /// `x · weightᵀ + bias`, then `then`, for `x` of `[rows, inputs]`.
    fn forward(&self, x: &Tensor, then: Then<'_>) -> Result<Tensor> {
        let product = x.matmul(&self.weight.t()?)?;
        let (gelu, residual) = match then {
            Then::Nothing => (false, None),
            Then::Gelu => (true, None),
            Then::Add(residual) => (false, Some(residual.storage_and_layout())),
        };
        let residual = match &residual {
            Some((storage, layout)) => Some(f32_values(storage, layout)?),
            None => None,
        };
        product.inplace_op1(&Epilogue {
            bias: &self.bias,
            residual,
            gelu,
        })?;
        Ok(product)
    }
}

/// The values of a contiguous f32 tensor on the CPU.
fn f32_values<'a>(storage: &'a Storage, layout: &Layout) -> Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (Storage::Cpu(CpuStorage::F32(values)), Some((start, end))) => Ok(&values[start..end]),
        _ => candle_core::bail!("a contiguous f32 tensor on the CPU expected"),
    }
}

/// Query, key and value stacked into one layer, the query (weight and bias) divided by
/// √(head size) so that the attention scores need no scaling of their own.
fn fused_qkv(vars: VarBuilder, hidden: usize, heads: usize) -> Result<Dense> {
    let scale = 1.0 / ((hidden / heads) as f64).sqrt();
    let part = |name: &str, scale: f64| -> Result<(Tensor, Tensor)> {
        let vars = vars.pp(name);
        Ok((
            (vars.get((hidden, hidden), "weight")? * scale)?,
            (vars.get(hidden, "bias")? * scale)?,
        ))
    };
    let (query, query_bias) = part("query", scale)?;
    let (key, key_bias) = part("key", 1.0)?;
    let (value, value_bias) = part("value", 1.0)?;
    Ok(Dense {
        weight: Tensor::cat(&[query, key, value], 0)?,
        bias: Tensor::cat(&[query_bias, key_bias, value_bias], 0)?.to_vec1()?,
    })
}

impl Norm {
    fn load(vars: VarBuilder, size: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: vars.get(size, "weight")?,
            bias: vars.get(size, "bias")?,
            eps: eps as f32,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

/// A dense layer's bias, then GELU or a residual, in place on its `[rows, outputs]` product.
struct Epilogue<'a> {
    bias: &'a [f32],
    residual: Option<&'a [f32]>,
    gelu: bool,
}

impl InplaceOp1 for Epilogue<'_> {
    fn name(&self) -> &'static str {
        "dense-epilogue"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let (CpuStorage::F32(values), Some((start, end))) = (storage, layout.contiguous_offsets())
        else {
            candle_core::bail!("dense: a contiguous f32 product expected");
        };
        let values = &mut values[start..end];
        if self
            .residual
            .is_some_and(|residual| residual.len() != values.len())
        {
            candle_core::bail!("dense: the residual's shape differs from the product's");
        }
        let width = self.bias.len();
        for (n, row) in values.chunks_mut(width).enumerate() {
            row.iter_mut().zip(self.bias).for_each(|(x, b)| *x += b);
            if self.gelu {
                row.iter_mut().for_each(|x| *x = gelu(*x));
            }
            if let Some(residual) = self.residual {
                let residual = &residual[n * width..(n + 1) * width];
                row.iter_mut().zip(residual).for_each(|(x, r)| *x += r);
            }
        }
        Ok(())
    }
}

/// GELU of one value.
#[inline]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// erf as a ratio of two polynomials in x² on [-4, 4] (Eigen's `generic_fast_erf_float`, the
/// approximation XLA and TVM use too; the coefficients digit for digit as published): no branch
/// and no call, so the compiler vectorises the loop above. Within 1e-6 of erf, which is ±1 to
/// f32 precision beyond ±4.
#[inline]
#[allow(clippy::excessive_precision)]
fn erf(x: f32) -> f32 {
    const NUMERATOR: [f32; 7] = [
        -2.72614225801306e-10,
        2.77068142495902e-08,
        -2.10102402082508e-06,
        -5.69250639462346e-05,
        -7.34990630326855e-04,
        -2.95459980854025e-03,
        -1.60960333262415e-02,
    ];
    const DENOMINATOR: [f32; 5] = [
        -1.45660718464996e-05,
        -2.13374055278905e-04,
        -1.68282697438203e-03,
        -7.37332916720468e-03,
        -1.42647390514189e-02,
    ];
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let horner = |coefficients: &[f32]| coefficients.iter().fold(0.0, |acc, c| acc * x2 + c);
    x * horner(&NUMERATOR) / horner(&DENOMINATOR)
}

/// The hidden states of each text averaged over its word pieces, then scaled to length 1:
/// the sentence vector sentence-transformers makes (zeros for a text of no word pieces).
pub fn mean_pooled(hidden: &Tensor, lengths: &[usize]) -> Result<Vec<Vec<f32>>> {
    let mut start = 0;
    lengths
        .iter()
        .map(|&length| {
            if length == 0 {
                return Ok(vec![0.0; hidden.dim(1)?]);
            }
            let mean = hidden.narrow(0, start, length)?.mean(0)?;
            start += length;
            let norm = mean
                .sqr()?
                .sum_keepdim(D::Minus1)?
                .sqrt()?
                .clamp(1e-12, f64::MAX)?;
            mean.broadcast_div(&norm)?.to_dtype(DType::F32)?.to_vec1()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf to double precision (Abramowitz and Stegun 7.1.26 is too coarse to judge 1e-7): the
    /// Maclaurin series, which converges fast enough on [-4, 4] in f64.
    fn erf_reference(x: f64) -> f64 {
        let mut term = x;
        let mut sum = x;
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn the_rational_erf_is_within_1e6_of_erf() {
        for i in -6000..=6000 {
            let x = i as f32 / 1000.0;
            let expected = if x.abs() > 4.0 {
                f64::from(x.signum())
            } else {
                erf_reference(f64::from(x))
            };
            let error = (f64::from(erf(x)) - expected).abs();
            assert!(error < 1e-6, "erf({x}): {} vs {expected}", erf(x));
        }
    }
}
