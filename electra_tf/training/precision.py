"""`precision: "auto"`: the fastest precision the hardware runs well, and why.

The original trains in float32 (and bfloat16 matmuls on TPU); `auto` picks:
- TPU: mixed_bfloat16 (its matrix units are bfloat16);
- GPU: mixed_bfloat16 from compute capability 8.0 (Ampere), mixed_float16 (with dynamic
  loss scaling) from 7.0 (tensor cores), float32 below;
- CPU: mixed_bfloat16 when the CPU has bfloat16 arithmetic (AVX512_BF16 or AMX_BF16; there
  the training step runs ~1.5× float32's, docs/benchmarks.md), float32 otherwise (without
  them every bfloat16 op converts, and mixed_bfloat16 is slower than float32).
"""

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(path="/proc/cpuinfo"):
    """The CPU's feature flags (Linux `/proc/cpuinfo`; empty where there is none)."""
    return set((cpuinfo("flags", path) or "").split())


def cpuinfo(key, path="/proc/cpuinfo"):
    """The first value of `key` (e.g. "flags", "model name") in Linux `/proc/cpuinfo`;
    None where there is no such file or line."""
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name.strip() == key:
                    return value.strip()
    except OSError:
        pass
    return None


def choose(use_tpu, gpu_capability=None, flags=None):
    """The precision `auto` means here.

    Args:
        use_tpu: training on a TPU.
        gpu_capability: (major, minor) of the first GPU; None: read from TensorFlow.
        flags: the CPU's feature flags; None: `cpu_flags()`.
    Returns:
        (precision, why): e.g. ("mixed_bfloat16", "TPU: bfloat16 matrix units").
    """
    if use_tpu:
        return "mixed_bfloat16", "TPU: bfloat16 matrix units"
    if gpu_capability is None:
        gpu_capability = _gpu_capability()
    if gpu_capability:
        if tuple(gpu_capability) >= (8, 0):
            return "mixed_bfloat16", f"GPU of compute capability {gpu_capability}: bfloat16"
        if tuple(gpu_capability) >= (7, 0):
            return "mixed_float16", f"GPU of compute capability {gpu_capability}: float16"
        return "float32", f"GPU of compute capability {gpu_capability}: no tensor cores"
    flags = cpu_flags() if flags is None else flags
    found = [f for f in BF16_CPU_FLAGS if f in flags]
    if found:
        return "mixed_bfloat16", f"CPU with {'/'.join(f.upper() for f in found)}: bfloat16 " \
                                 "arithmetic"
    return "float32", "CPU without AVX512_BF16/AMX_BF16: bfloat16 would be emulated"


def _gpu_capability():
    import tensorflow as tf  # noqa: PLC0415 (configs are built without TensorFlow)

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return ()
    return tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", ())
