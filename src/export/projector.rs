//! Codes as files for TensorFlow's Embedding Projector (projector.tensorflow.org, TensorBoard).
