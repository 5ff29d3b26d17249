"""An exported model: its folder as docs/model-format.md defines it (``folder``), run by
onnxruntime (``engine``), scored on whole sequences (``scoring``) and writing new music
offline (``generate``). Never imports torch.

May import ``livecomp.io`` and ``livecomp.music``; nothing above them."""
