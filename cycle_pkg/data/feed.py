"""The loader's batches as the training step takes them: views on the training device.

A feed serves one data path, which ``pretrain_input`` chose together with the dataset (``encoded``),
never guessed from a batch. A batch of the CPU-worker path holds augmented views, which are copied
over. A batch of the device path (``pairs.collate_encoded``) holds JPEG bytes and parameters, which
are decoded and augmented on the device here (``batch_augment.decode_and_augment``). With
``prefetch`` a thread prepares the next batches while the training step runs (on CUDA, on a stream of
its own: the step's stream waits for each batch's event, not the host), so that neither reading the
loader nor the host's share of decoding holds the step up. The views, and their order, are the same
either way.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import Tensor

from .batch_augment import decode_and_augment
from .jpeg import UnreadableWindow
from .pairs import VIEWS

PREFETCH = 2  # batches prepared ahead
END = object()


class DeviceFeed:
    """Iterate a loader's batches as ``(views, skipped)``: the batch's views on ``device`` and the frames
    it skipped. ``encoded``: the batches hold JPEG bytes and parameters (the device path), decoded and
    augmented here; otherwise augmented views, copied over."""

    def __init__(
        self,
        device: torch.device,
        image_size: int,
        *,
        encoded: bool,
        memory_format: torch.memory_format = torch.contiguous_format,
        prefetch: bool = False,
    ):
        self.device, self.image_size, self.encoded = device, image_size, encoded
        self.memory_format, self.prefetch = memory_format, prefetch
        self.unreadable = UnreadableWindow()

    def prepare(self, batch: dict[str, Any]) -> tuple[dict[str, Tensor], int]:
        skipped = int(batch["skipped"].sum())
        if self.encoded:
            views, unreadable = decode_and_augment(batch, self.device, self.image_size)
            self.unreadable.add(len(batch["frame_names"]), unreadable)
            skipped += unreadable
        else:
            views = {name: batch[name].to(self.device, non_blocking=True) for name in VIEWS if name in batch}
        return {name: view.contiguous(memory_format=self.memory_format) for name, view in views.items()}, skipped

    def views(self, loader: Iterable[dict[str, Any]]) -> Iterator[tuple[dict[str, Tensor], int]]:
        """Each of ``loader``'s batches prepared, in order."""
        if not self.prefetch:
            for batch in loader:
                yield self.prepare(batch)
            return
        yield from self._prefetched(loader)

    def _prefetched(self, loader: Iterable[dict[str, Any]]) -> Iterator[tuple[dict[str, Tensor], int]]:
        cuda = self.device.type == "cuda"
        ready: queue.Queue = queue.Queue(maxsize=PREFETCH)
        stop = threading.Event()

        def hand_over(entry: Any) -> None:
            while not stop.is_set():
                with contextlib.suppress(queue.Full):
                    ready.put(entry, timeout=0.1)
                    return

        def work() -> None:
            try:
                if cuda:
                    torch.cuda.set_device(self.device)  # a thread starts on device 0, not on this rank's
                stream = torch.cuda.Stream(self.device) if cuda else None
                with torch.cuda.stream(stream) if cuda else contextlib.nullcontext():
                    for batch in loader:
                        views, skipped = self.prepare(batch)
                        event = torch.cuda.Event() if cuda else None
                        if event is not None:
                            event.record(stream)
                        hand_over((views, skipped, event))
                        if stop.is_set():
                            return
                hand_over(END)
            except BaseException as err:  # raised again in the training thread
                hand_over(err)

        thread = threading.Thread(target=work, name="device-feed", daemon=True)
        thread.start()
        try:
            while (entry := ready.get()) is not END:
                if isinstance(entry, BaseException):
                    raise entry
                views, skipped, event = entry
                if event is not None:
                    current = torch.cuda.current_stream(self.device)
                    current.wait_event(event)
                    for view in views.values():
                        view.record_stream(current)  # made on the feed's stream, used on this one
                yield views, skipped
        finally:
            stop.set()
            thread.join()
