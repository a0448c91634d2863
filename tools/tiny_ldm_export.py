"""Config and diffusers-layout export of the embedded tiny latent diffusion model (data/models/tiny-ldm).

The UNet config has the full key set diffusers 0.30.3 writes for UNet2DConditionModel (same keys as
tests/fixtures/conformance/unet/config.json), so the pipeline loads it with the SD 2.1 code path.
"""
import json
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_np import write_safetensors  # noqa: E402

from taesd import TAESD_DIR  # noqa: E402  (the shipped TAESD files, copied into each export)
CROSS_ATTENTION_DIM = 64
PROMPT_TOKENS = 77


def unet_config(block_out_channels=(8, 32, 32, 64), heads=(1, 1, 1, 2), groups=8,
                cross_attention_dim=CROSS_ATTENTION_DIM, sample_size=32):
    """Full diffusers UNet2DConditionModel config; SD 2.1 block structure, small widths."""
    return {
        "_class_name": "UNet2DConditionModel",
        "_diffusers_version": "0.30.3",
        "act_fn": "silu",
        "addition_embed_type": None,
        "addition_embed_type_num_heads": 64,
        "addition_time_embed_dim": None,
        "attention_head_dim": list(heads),
        "attention_type": "default",
        "block_out_channels": list(block_out_channels),
        "center_input_sample": False,
        "class_embed_type": None,
        "class_embeddings_concat": False,
        "conv_in_kernel": 3,
        "conv_out_kernel": 3,
        "cross_attention_dim": cross_attention_dim,
        "cross_attention_norm": None,
        "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        "downsample_padding": 1,
        "dropout": 0.0,
        "dual_cross_attention": False,
        "encoder_hid_dim": None,
        "encoder_hid_dim_type": None,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "in_channels": 4,
        "layers_per_block": 2,
        "mid_block_only_cross_attention": None,
        "mid_block_scale_factor": 1,
        "mid_block_type": "UNetMidBlock2DCrossAttn",
        "norm_eps": 1e-05,
        "norm_num_groups": groups,
        "num_attention_heads": None,
        "num_class_embeds": None,
        "only_cross_attention": False,
        "out_channels": 4,
        "projection_class_embeddings_input_dim": None,
        "resnet_out_scale_factor": 1.0,
        "resnet_skip_time_act": False,
        "resnet_time_scale_shift": "default",
        "reverse_transformer_layers_per_block": None,
        "sample_size": sample_size,
        "time_cond_proj_dim": None,
        "time_embedding_act_fn": None,
        "time_embedding_dim": None,
        "time_embedding_type": "positional",
        "timestep_post_act": None,
        "transformer_layers_per_block": 1,
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        "upcast_attention": False,
        "use_linear_projection": True,
    }


SCHEDULER_CONFIG = {
    "_class_name": "EulerDiscreteScheduler",
    "_diffusers_version": "0.30.3",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "rescale_betas_zero_snr": False,
    "sigma_max": None,
    "sigma_min": None,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "timestep_type": "discrete",
    "trained_betas": None,
    "use_karras_sigmas": False,
}

MODEL_INDEX = {
    "_class_name": "StableDiffusionPipeline",
    "_diffusers_version": "0.30.3",
    "feature_extractor": [None, None],
    "requires_safety_checker": False,
    "safety_checker": [None, None],
    "scheduler": ["diffusers", "EulerDiscreteScheduler"],
    "text_encoder": [None, None],
    "tokenizer": [None, None],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderTiny"],
    "vidseg_prompt_embedding": "prompt_embedding.safetensors",
}

VAE_CONFIG = {"_class_name": "AutoencoderTiny", "latent_channels": 4, "scaling_factor": 1.0, "vidseg_layout": "taesd.py"}


def _write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def _write_st(path, tensors, metadata):
    tmp = path + ".tmp"
    write_safetensors(tmp, tensors, metadata)
    os.replace(tmp, path)


def export_model(out_dir, config, unet_state, prompt_embedding, metadata, fp16=False):
    """Write the diffusers-layout folder. unet_state: name -> float32 np.ndarray; prompt_embedding [77, D].

    fp16: store the UNet weights as F16 (half the bytes; the pipeline computes in F32 either way)."""
    for sub in ("unet", "vae", "scheduler"):
        os.makedirs(os.path.join(out_dir, sub), exist_ok=True)
    meta = {"format": "pt", **{k: str(v) for k, v in metadata.items()}}
    _write_json(os.path.join(out_dir, "model_index.json"), MODEL_INDEX)
    _write_json(os.path.join(out_dir, "unet", "config.json"), config)
    _write_st(os.path.join(out_dir, "unet", "diffusion_pytorch_model.safetensors"),
              {k: np.asarray(v, np.float16 if fp16 else np.float32) for k, v in unet_state.items()}, meta)
    emb = np.asarray(prompt_embedding, np.float32).reshape(1, PROMPT_TOKENS, -1)
    _write_st(os.path.join(out_dir, "prompt_embedding.safetensors"), {"empty_prompt": emb},
              {**meta, "note": "learned stand-in for CLIP('') (cond context); uncond context = zeros"})
    _write_json(os.path.join(out_dir, "scheduler", "scheduler_config.json"), SCHEDULER_CONFIG)
    _write_json(os.path.join(out_dir, "vae", "config.json"), VAE_CONFIG)
    for name in ("encoder.safetensors", "decoder.safetensors", "LICENSE", "README.md"):
        src, dst = os.path.join(TAESD_DIR, name), os.path.join(out_dir, "vae", name)
        if not (os.path.exists(dst) and os.path.samefile(src, dst)):  # re-exporting data/models/tiny-ldm in place
            shutil.copyfile(src, dst)
