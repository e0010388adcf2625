//! Execution devices and how a session is bound to one.

use std::fmt;

use ort::ep::{self, ExecutionProvider};
use ort::session::builder::SessionBuilder;

use crate::error::OrtError;

/// Where the model runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Device {
    /// TensorRT if it works here, else CUDA if it works here, else the CPU. Never an error.
    #[default]
    Auto,
    /// The CPU only.
    Cpu,
    /// NVIDIA CUDA (device 0); an error if the CUDA provider cannot be used.
    Cuda,
    /// NVIDIA TensorRT (device 0); an error if the TensorRT provider cannot be used.
    TensorRt,
}

impl std::str::FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda),
            "tensorrt" | "trt" => Ok(Self::TensorRt),
            other => Err(format!(
                "unknown device {other:?}: expected auto, cpu, cuda or tensorrt"
            )),
        }
    }
}

/// The execution provider a session actually runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Provider {
    /// ONNX Runtime's default CPU provider.
    Cpu,
    /// The CUDA provider.
    Cuda,
    /// The TensorRT provider (nodes it cannot take fall back to CUDA/CPU inside ONNX Runtime).
    TensorRt,
}

impl Provider {
    /// ONNX Runtime's name for the provider.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "CPUExecutionProvider",
            Self::Cuda => "CUDAExecutionProvider",
            Self::TensorRt => "TensorrtExecutionProvider",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Registers one provider on the builder, or says why it cannot be used.
///
/// Availability is checked first (`GetAvailableProviders`: was this ONNX Runtime built with
/// the provider?) so that a CPU-only runtime is skipped quietly instead of logging an
/// ERROR per failed provider, as ort's default fallback does.
fn try_register(provider: Provider, builder: &mut SessionBuilder) -> Result<(), String> {
    let available = match provider {
        Provider::Cpu => return Ok(()),
        Provider::Cuda => ep::CUDA::is_available(),
        Provider::TensorRt => ep::TensorRT::is_available(),
    };
    match available {
        Ok(true) => {}
        Ok(false) => return Err("this ONNX Runtime build does not include it (the PyPI `onnxruntime` wheel is CPU-only; `onnxruntime-gpu` has CUDA and TensorRT)".into()),
        Err(err) => return Err(err.to_string()),
    }
    let result = match provider {
        Provider::Cuda => ep::CUDA::default().register(builder),
        Provider::TensorRt => ep::TensorRT::default().register(builder),
        Provider::Cpu => Ok(()),
    };
    result.map_err(|err| err.to_string())
}

/// Binds `builder` to the provider `device` asks for and returns the one in use.
pub(crate) fn bind(device: Device, builder: &mut SessionBuilder) -> Result<Provider, OrtError> {
    let strict = |provider: Provider, builder: &mut SessionBuilder| {
        try_register(provider, builder)
            .map(|()| provider)
            .map_err(|reason| OrtError::ProviderUnavailable {
                provider: provider.name(),
                reason,
            })
    };
    match device {
        Device::Cpu => Ok(Provider::Cpu),
        Device::Cuda => strict(Provider::Cuda, builder),
        Device::TensorRt => strict(Provider::TensorRt, builder),
        Device::Auto => {
            for provider in [Provider::TensorRt, Provider::Cuda] {
                match try_register(provider, builder) {
                    Ok(()) => return Ok(provider),
                    Err(reason) => tracing::debug!("{provider} not used: {reason}"),
                }
            }
            Ok(Provider::Cpu)
        }
    }
}

/// Finds out once which provider `device` gives here, on a builder that is then dropped
/// (registering a provider does not load any model), so that both towers run on the same
/// provider and a strict device that is unavailable fails at load.
pub(crate) fn resolve(
    environment: &ort::environment::Environment,
    device: Device,
) -> Result<Provider, OrtError> {
    let mut builder = ort::session::Session::builder(environment).map_err(OrtError::Environment)?;
    bind(device, &mut builder)
}

/// Binds a session builder to a provider [`resolve`] chose.
pub(crate) fn bind_resolved(
    provider: Provider,
    builder: &mut SessionBuilder,
) -> Result<Provider, OrtError> {
    let device = match provider {
        Provider::Cpu => Device::Cpu,
        Provider::Cuda => Device::Cuda,
        Provider::TensorRt => Device::TensorRt,
    };
    bind(device, builder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_names() {
        assert_eq!("AUTO".parse::<Device>(), Ok(Device::Auto));
        assert_eq!("tensorrt".parse::<Device>(), Ok(Device::TensorRt));
        assert!("tpu".parse::<Device>().is_err());
    }
}
