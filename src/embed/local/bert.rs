//! The BERT encoder of a sentence-transformers model, on candle's CPU matrix products, over a
//! batch packed without padding.
//!
//! candle-transformers' `BertModel` pads every text of a batch to the longest one and masks the
//! padding out of every attention score. Here the word pieces of a batch lie end to end, one row
//! each (`[pieces, hidden]`): the dense layers, which are nearly all the arithmetic, never
//! compute a padding row, and attention runs text by text with nothing to mask. The rest is the
//! same model: query, key and value as one matrix product (the scale 1/√head folded into the
//! query weights at load), softmax, layer norm, and GELU with erf (the model's
//! `hidden_act: gelu`) from a rational approximation accurate to 1e-6 instead of libm's scalar
//! `erff`.
//!
//! Only the matrix products are candle's (gemm, on the rayon pool they are called from: the
//! embedding pool). Everything element-wise is done here, in place, in loops the compiler
//! vectorises (SSE2, four lanes; see [`wide`] on AVX2): after each dense layer
//! one pass adds the bias, then GELU, or the residual and the layer norm; attention reads each
//! head's queries, keys and values where the fused product left them (strided views, no copy)
//! and takes the softmax in place with a polynomial exp. candle's own element-wise ops are not
//! used: on tensors of 64 Ki elements or more they run on a spinning thread pool of candle's,
//! outside the embedding pool, which took a second CPU whatever `threads` said.

use candle_core::{CpuStorage, Device, InplaceOp1, Layout, Result, Storage, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, HiddenAct};
use rayon::prelude::*;

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

/// A dense layer with a bias: `x · weight + bias`.
struct Dense {
    /// `[inputs, outputs]`, row-major (the checkpoint's `[outputs, inputs]` transposed once at
    /// load, so no product reads it across its rows).
    weight: Tensor,
    bias: Vec<f32>,
}

/// Layer normalisation with a weight and a bias.
struct Norm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

/// Rows of a product one task of the pool finishes element-wise.
const ROWS_PER_TASK: usize = 16;

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
        embedded
            .par_chunks_mut(hidden * ROWS_PER_TASK)
            .for_each(|rows| {
                wide(NormRows {
                    norm: &self.norm,
                    rows,
                })
            });
        let mut hidden = Tensor::from_vec(embedded, (ids.len(), hidden), &Device::Cpu)?;
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
            .attention_out
            .forward(&context, Then::AddNorm(x, &self.attention_norm))?;
        let inner = self.up.forward(&x, Then::Gelu)?;
        self.down
            .forward(&inner, Then::AddNorm(&x, &self.output_norm))
    }
}

/// Self-attention of each text of the batch over its own word pieces, the texts in parallel on
/// the pool. `qkv` is `[pieces, 3 × hidden]`, the query already scaled; the answer is
/// `[pieces, hidden]`.
fn attention(qkv: &Tensor, lengths: &[usize], heads: usize) -> Result<Tensor> {
    let (pieces, width) = qkv.dims2()?;
    let hidden = width / 3;
    let size = hidden / heads;
    let mut context = vec![0.0; pieces * hidden];
    let mut texts = Vec::with_capacity(lengths.len());
    let (mut rest, mut start) = (context.as_mut_slice(), 0);
    for &length in lengths {
        let (text, tail) = rest.split_at_mut(length * hidden);
        texts.push((start, length, text));
        (rest, start) = (tail, start + length);
    }
    texts
        .into_par_iter()
        .filter(|(_, length, _)| *length > 0)
        .try_for_each(|(start, length, out)| -> Result<()> {
            // `[heads, length, size]` views of the queries, keys or values (part 0, 1, 2): the
            // rows of the fused product, read with strides.
            let text = qkv
                .narrow(0, start, length)?
                .reshape((length, 3 * heads, size))?;
            let part = |n: usize| text.narrow(1, n * heads, heads)?.transpose(0, 1);
            let weights = part(0)?.matmul(&part(1)?.t()?)?;
            weights.inplace_op1(&Softmax)?;
            let values = weights.matmul(&part(2)?)?;
            let (storage, layout) = values.storage_and_layout();
            let values = f32_values(&storage, layout)?;
            for (head, per_head) in values.chunks(length * size).enumerate() {
                for (row, value) in out.chunks_mut(hidden).zip(per_head.chunks(size)) {
                    row[head * size..(head + 1) * size].copy_from_slice(value);
                }
            }
            Ok(())
        })?;
    Tensor::from_vec(context, (pieces, hidden), &Device::Cpu)
}

/// What follows a dense layer's bias, element by element.
#[derive(Clone, Copy)]
enum Then<'a> {
    Nothing,
    /// GELU.
    Gelu,
    /// A residual (a tensor of the same shape) added, then a layer norm.
    AddNorm(&'a Tensor, &'a Norm),
}

impl Dense {
    /// The layer `[inputs] → [outputs]` of `vars` (`weight`, `bias`).
    fn load(vars: VarBuilder, inputs: usize, outputs: usize) -> Result<Self> {
        Ok(Self {
            weight: vars.get((outputs, inputs), "weight")?.t()?.contiguous()?,
            bias: vars.get(outputs, "bias")?.to_vec1()?,
        })
    }

    /// `x · weight + bias`, then `then`, for `x` of `[rows, inputs]`.
    fn forward(&self, x: &Tensor, then: Then<'_>) -> Result<Tensor> {
        let product = x.matmul(&self.weight)?;
        let residual = match then {
            Then::AddNorm(residual, _) => Some(residual.storage_and_layout()),
            Then::Nothing | Then::Gelu => None,
        };
        let residual = match &residual {
            Some((storage, layout)) => Some(f32_values(storage, layout)?),
            None => None,
        };
        product.inplace_op1(&Epilogue {
            bias: &self.bias,
            gelu: matches!(then, Then::Gelu),
            residual: match then {
                Then::AddNorm(_, norm) => residual.map(|values| (values, norm)),
                Then::Nothing | Then::Gelu => None,
            },
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

/// The values of a contiguous f32 tensor on the CPU, to change in place.
fn f32_values_mut<'a>(storage: &'a mut CpuStorage, layout: &Layout) -> Result<&'a mut [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(values), Some((start, end))) => Ok(&mut values[start..end]),
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
        weight: Tensor::cat(&[query, key, value], 0)?.t()?.contiguous()?,
        bias: Tensor::cat(&[query_bias, key_bias, value_bias], 0)?.to_vec1()?,
    })
}

impl Norm {
    fn load(vars: VarBuilder, size: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: vars.get(size, "weight")?.to_vec1()?,
            bias: vars.get(size, "bias")?.to_vec1()?,
            eps: eps as f32,
        })
    }

    /// Normalises one row in place: mean 0 and variance 1 (biased, as BERT's), then the weight
    /// and the bias.
    #[inline(always)]
    fn apply(&self, x: &mut [f32]) {
        let n = x.len() as f32;
        let mean = sum(x) / n;
        let mut squares = [0.0f32; LANES];
        let mut chunks = x.chunks_exact(LANES);
        for chunk in &mut chunks {
            for (acc, value) in squares.iter_mut().zip(chunk) {
                *acc += (value - mean) * (value - mean);
            }
        }
        let tail: f32 = chunks
            .remainder()
            .iter()
            .map(|v| (v - mean) * (v - mean))
            .sum();
        let variance = (squares.iter().sum::<f32>() + tail) / n;
        let scale = 1.0 / (variance + self.eps).sqrt();
        for ((value, weight), bias) in x.iter_mut().zip(&self.weight).zip(&self.bias) {
            *value = (*value - mean) * scale * weight + bias;
        }
    }
}

/// Lanes of the partial sums below: f32 additions are not associative, so a plain `sum()` stays
/// one add after the other; eight running sums let the compiler use vector registers.
const LANES: usize = 8;

/// The sum of `values`, in [`LANES`] running sums.
#[inline(always)]
fn sum(values: &[f32]) -> f32 {
    let mut sums = [0.0f32; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        sums.iter_mut()
            .zip(chunk)
            .for_each(|(acc, value)| *acc += value);
    }
    sums.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// The largest of `values` (−∞ for none), in [`LANES`] running maxima.
#[inline(always)]
fn max(values: &[f32]) -> f32 {
    let mut maxima = [f32::NEG_INFINITY; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (acc, &value) in maxima.iter_mut().zip(chunk) {
            *acc = if value > *acc { value } else { *acc };
        }
    }
    chunks
        .remainder()
        .iter()
        .chain(&maxima)
        .fold(f32::NEG_INFINITY, |acc, &value| acc.max(value))
}

/// Element-wise work for [`wide`]. `run` is `#[inline(always)]` in each implementation, and so
/// is every function it calls, so that all of it is compiled into `avx2` with that function's
/// features (a closure stays a call to code built for the x86-64 baseline: measured with
/// objdump on 2026-12-08).
trait Wide {
    /// Does the work.
    fn run(self);
}

/// Runs `work` through a function compiled for AVX2 and FMA where the CPU has them, elsewhere
/// as it is; the same arithmetic either way (Rust never contracts `a * b + c`), eight lanes wide
/// instead of the x86-64 baseline's four.
#[inline]
fn wide(work: impl Wide) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has every feature `avx2` is compiled for, checked just above.
        return unsafe { avx2(work) };
    }
    work.run()
}

/// `work`, compiled with AVX2 and FMA (see [`wide`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn avx2(work: impl Wide) {
    work.run()
}

/// Rows of attention scores, each through [`softmax`].
struct SoftmaxRows<'a> {
    values: &'a mut [f32],
    width: usize,
}

impl Wide for SoftmaxRows<'_> {
    #[inline(always)]
    fn run(self) {
        for row in self.values.chunks_mut(self.width) {
            softmax(row);
        }
    }
}

/// Rows of hidden states, each through a layer norm.
struct NormRows<'a> {
    norm: &'a Norm,
    rows: &'a mut [f32],
}

impl Wide for NormRows<'_> {
    #[inline(always)]
    fn run(self) {
        for row in self.rows.chunks_mut(self.norm.weight.len()) {
            self.norm.apply(row);
        }
    }
}

/// Rows of a dense product, through its [`Epilogue`]; the first is the product's row `first`.
struct EpilogueRows<'a, 'b> {
    epilogue: &'a Epilogue<'b>,
    first: usize,
    rows: &'a mut [f32],
}

impl Wide for EpilogueRows<'_, '_> {
    #[inline(always)]
    fn run(self) {
        self.epilogue.rows(self.first, self.rows);
    }
}

/// The softmax of each row of attention scores, in place: exp of each score less the row's
/// largest, divided by their sum.
struct Softmax;

impl InplaceOp1 for Softmax {
    fn name(&self) -> &'static str {
        "attention-softmax"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let width = layout.dims().last().copied().unwrap_or(0);
        let values = f32_values_mut(storage, layout)?;
        if width == 0 {
            return Ok(());
        }
        wide(SoftmaxRows { values, width });
        Ok(())
    }
}

/// The softmax of one row, in place.
#[inline(always)]
fn softmax(row: &mut [f32]) {
    let largest = max(row);
    let mut sums = [0.0f32; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for (acc, value) in sums.iter_mut().zip(chunk) {
            *value = exp(*value - largest);
            *acc += *value;
        }
    }
    let mut total: f32 = sums.iter().sum();
    for value in chunks.into_remainder() {
        *value = exp(*value - largest);
        total += *value;
    }
    let scale = 1.0 / total;
    row.iter_mut().for_each(|value| *value *= scale);
}

/// e^x for x ≤ 0 within 3e-7 relative (e^−87 below −87, where f32 leaves its normal range): x =
/// n·ln 2 + r with |r| ≤ ln 2 / 2, e^r from Cephes' degree-5 polynomial, 2^n written into the
/// exponent bits. No branch and no call, so softmax's loop vectorises; libm's `expf` is a call
/// per value.
#[inline(always)]
#[allow(clippy::excessive_precision)]
fn exp(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 × 2^23: adding it rounds to an integer
    const LN2_HIGH: f32 = 0.693_359_375;
    const LN2_LOW: f32 = -2.121_944_4e-4;
    const POLYNOMIAL: [f32; 6] = [
        1.987_569_15e-4,
        1.398_199_95e-3,
        8.333_451_9e-3,
        4.166_579_59e-2,
        1.666_666_55e-1,
        5.000_000_12e-1,
    ];
    let x = x.max(-87.0);
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HIGH - n * LN2_LOW;
    let p = POLYNOMIAL.iter().fold(0.0, |acc, c| acc * r + c);
    let power = (shifted.to_bits() as i32 - ROUND.to_bits() as i32 + 127) << 23;
    (p * r * r + r + 1.0) * f32::from_bits(power as u32)
}

/// A dense layer's bias, then GELU, or a residual and a layer norm, in place on its
/// `[rows, outputs]` product, rows in parallel on the pool.
struct Epilogue<'a> {
    bias: &'a [f32],
    gelu: bool,
    residual: Option<(&'a [f32], &'a Norm)>,
}

impl InplaceOp1 for Epilogue<'_> {
    fn name(&self) -> &'static str {
        "dense-epilogue"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let values = f32_values_mut(storage, layout)?;
        if self
            .residual
            .is_some_and(|(residual, _)| residual.len() != values.len())
        {
            candle_core::bail!("dense: the residual's shape differs from the product's");
        }
        let width = self.bias.len();
        values
            .par_chunks_mut(width * ROWS_PER_TASK)
            .enumerate()
            .for_each(|(task, rows)| {
                wide(EpilogueRows {
                    epilogue: self,
                    first: task * ROWS_PER_TASK,
                    rows,
                })
            });
        Ok(())
    }
}

impl Epilogue<'_> {
    /// The epilogue of `rows`, the first of them the product's row `first`.
    #[inline(always)]
    fn rows(&self, first: usize, rows: &mut [f32]) {
        let width = self.bias.len();
        for (n, row) in rows.chunks_mut(width).enumerate() {
            row.iter_mut().zip(self.bias).for_each(|(x, b)| *x += b);
            if self.gelu {
                row.iter_mut().for_each(|x| *x = gelu(*x));
            }
            if let Some((residual, norm)) = self.residual {
                let residual = &residual[(first + n) * width..(first + n + 1) * width];
                row.iter_mut().zip(residual).for_each(|(x, r)| *x += r);
                norm.apply(row);
            }
        }
    }
}

/// GELU of one value.
#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// erf as a ratio of two polynomials in x² on [-4, 4] (Eigen's `generic_fast_erf_float`, the
/// approximation XLA and TVM use too; the coefficients digit for digit as published): no branch
/// and no call, so the compiler vectorises the loop above. Within 1e-6 of erf, which is ±1 to
/// f32 precision beyond ±4.
#[inline(always)]
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
    let size = hidden.dim(1)?;
    let (storage, layout) = hidden.storage_and_layout();
    let values = f32_values(&storage, layout)?;
    let mut start = 0;
    Ok(lengths
        .iter()
        .map(|&length| {
            let mut mean = vec![0.0f32; size];
            for row in values[start * size..(start + length) * size].chunks(size) {
                mean.iter_mut().zip(row).for_each(|(m, x)| *m += x);
            }
            start += length;
            let norm = mean.iter().map(|m| m * m).sum::<f32>().sqrt().max(1e-12);
            mean.iter_mut().for_each(|m| *m /= norm);
            mean
        })
        .collect())
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
    fn the_polynomial_exp_is_within_3e7_of_exp() {
        for i in 0..=100_000 {
            let x = -(i as f32) / 1000.0;
            let (got, expected) = (f64::from(exp(x)), f64::from(x).exp());
            if x >= -87.0 {
                let error = (got - expected).abs() / expected;
                assert!(error < 3e-7, "exp({x}): {got} vs {expected}");
            } else {
                assert!(got <= 1.7e-38, "exp({x}): {got}");
            }
        }
    }

    #[test]
    fn softmax_in_place_matches_the_textbook_one() {
        for width in [1, 7, 8, 9, 222] {
            let mut row: Vec<f32> = (0..width)
                .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.9)
                .collect();
            let largest = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let exps: Vec<f64> = row.iter().map(|&x| f64::from(x - largest).exp()).collect();
            let total: f64 = exps.iter().sum();
            let width = row.len();
            wide(SoftmaxRows {
                values: &mut row,
                width,
            });
            for (got, e) in row.iter().zip(&exps) {
                assert!(
                    (f64::from(*got) - e / total).abs() < 1e-6,
                    "{width}: {got} vs {}",
                    e / total
                );
            }
        }
    }

    #[test]
    fn layer_norm_in_place_matches_the_textbook_one() {
        let size = 37;
        let norm = Norm {
            weight: (0..size).map(|i| 1.0 + i as f32 / 10.0).collect(),
            bias: (0..size).map(|i| i as f32 / 100.0 - 0.1).collect(),
            eps: 1e-12,
        };
        let mut row: Vec<f32> = (0..size)
            .map(|i| ((i * 13 % 17) as f32) * 0.3 - 2.0)
            .collect();
        let n = size as f64;
        let mean = row.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let variance = row
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / n;
        let expected: Vec<f64> = row
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                (f64::from(x) - mean) / variance.sqrt() * f64::from(norm.weight[i])
                    + f64::from(norm.bias[i])
            })
            .collect();
        wide(NormRows {
            norm: &norm,
            rows: &mut row,
        });
        for (got, expected) in row.iter().zip(&expected) {
            assert!(
                (f64::from(*got) - expected).abs() < 1e-5,
                "{got} vs {expected}"
            );
        }
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
