//! The built-in variants, one file each. To add one: a file here with its config
//! ([`VariantConfig`](crate::model::variant::VariantConfig)) and its network
//! ([`Variant`](crate::model::variant::Variant)), and a line in [`built_in`].

pub mod aae;
pub mod btcvae;
pub mod conv;
pub mod conv1d;
pub mod cvae;
pub mod dense;
pub mod factorvae;
pub mod gru;
pub mod infovae;
pub mod iwae;
pub mod lstm;
pub mod rae;
pub mod ssvae;
pub mod vae;
pub mod vqvae;
pub mod wae;
pub mod windows;

use crate::model::variant::VariantEntry;

/// The registry's first entries.
pub fn built_in() -> Vec<VariantEntry> {
    vec![
        VariantEntry::of::<dense::DenseConfig>(
            "Dense autoencoder (with optional denoising, sparse and contractive terms)",
        ),
        VariantEntry::of::<vae::VaeConfig>(
            "Variational autoencoder (convolutional with --encoder)",
        ),
        VariantEntry::of::<conv::ConvConfig>(
            "Convolutional autoencoder (layers from --encoder / --decoder)",
        ),
        VariantEntry::of::<conv1d::Conv1dConfig>(
            "1-D convolutional autoencoder over time, for windows of a series (--window): the keras.io recipe by default",
        ),
        VariantEntry::of::<gru::GruConfig>(
            "Recurrent (GRU) autoencoder over time, for windows of a series (--window): a GRU reads the window into a code, a second one writes it back",
        ),
        VariantEntry::of::<lstm::LstmConfig>(
            "Recurrent (LSTM) autoencoder over time, for windows of a series (--window): the gru model with LSTM cells",
        ),
        VariantEntry::of::<iwae::IwaeConfig>(
            "Importance-weighted autoencoder: a VAE trained on the k-sample bound",
        ),
        VariantEntry::of::<rae::RaeConfig>(
            "Regularised autoencoder (RAE): L2 on codes, decoder weight decay or gradient penalty; sample with --sampler gmm",
        ),
        VariantEntry::of::<vqvae::VqVaeConfig>(
            "Vector-quantised VAE: a conv encoder's grid of vectors snapped to a learned codebook",
        ),
        VariantEntry::of::<wae::WaeConfig>(
            "Wasserstein autoencoder (MMD): codes matched to N(0, I) by maximum mean discrepancy",
        ),
        VariantEntry::of::<btcvae::BetaTcVaeConfig>(
            "β-TCVAE: a VAE whose KL is split into mutual information, total correlation and dimension-wise KL, weighted apart",
        ),
        VariantEntry::of::<aae::AaeConfig>(
            "Adversarial autoencoder: a discriminator on codes pushes them towards a prior (gaussian, mixture, uniform)",
        ),
        VariantEntry::of::<factorvae::FactorVaeConfig>(
            "FactorVAE: a VAE penalising the total correlation a discriminator on codes estimates",
        ),
        VariantEntry::of::<cvae::CvaeConfig>(
            "Conditional VAE: encoder and decoder see the class label; sample a class with --class",
        ),
        VariantEntry::of::<infovae::InfoVaeConfig>(
            "InfoVAE (MMD): a VAE with its KL reweighted and an MMD between posterior samples and the prior",
        ),
        VariantEntry::of::<ssvae::SsVaeConfig>(
            "Semi-supervised VAE (M2): learns from the labels there are (--labelled N) and classifies; M1+M2 on a VAE's codes",
        ),
    ]
}
