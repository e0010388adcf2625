//! Image preprocessing: decode → resize → center-crop → RGB → normalize.
