"""Training data helpers: the held-out split, pair matching by time and name, the seeded patch sampler."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

from esrgan_video.train.data import PatchSampler, Source, match_pairs, split_held_out, validation_crops


def test_held_out_is_the_last_five_percent_at_least_two():
    assert split_held_out(100, 0.05, 2) == (list(range(95)), list(range(95, 100)))
    assert split_held_out(10, 0.05, 2) == (list(range(8)), [8, 9])
    assert split_held_out(250, 0.10, 2)[1] == list(range(225, 250))
    assert split_held_out(2, 0.05, 2) == ([], [0, 1])  # nothing left to train on: the caller refuses


def test_pairs_match_by_nearest_time_within_half_a_frame_and_by_name():
    hr = [Fraction(i, 25) for i in range(5)]
    lr = [Fraction(i, 25) + Fraction(1, 200) for i in range(1, 6)]  # starts one frame later, 5 ms late
    assert match_pairs(hr, lr) == [None, 0, 1, 2, 3]
    assert match_pairs(hr, lr, offset=-0.04) == [0, 1, 2, 3, 4]
    assert match_pairs(["a", "b", "c"], ["c", "a"]) == [1, None, 0]


def _sources():
    """Six 64×48 frames, constant over aligned 4×4 blocks (so every aligned, flipped or rotated HR patch
    subsamples to its LR patch); training frames hold codes < 200, the held-out frames 4 and 5 are all 250."""
    g = torch.Generator().manual_seed(0)
    lr = [torch.randint(0, 200, (3, 12, 16), generator=g, dtype=torch.uint8) for _ in range(6)]
    lr[4].fill_(250)
    lr[5].fill_(250)
    frames = [f.repeat_interleave(4, 1).repeat_interleave(4, 2) for f in lr]
    return [Source("a", frames, list(range(6)), lr=lr, train=[0, 1, 2, 3], held=[4, 5])]


def test_sampler_is_seeded_aligned_restorable_and_never_touches_held_out_frames():
    src = _sources()
    s = PatchSampler(src, 16, 4, seed=3, rotate=True)
    state = s.state()
    hr, lr, seeds = s.sample(32)
    assert hr.shape == (32, 3, 16, 16) and lr.shape == (32, 3, 4, 4) and seeds.shape == (32,)
    assert torch.equal(hr[:, :, ::4, ::4], lr)  # the LR patch is the aligned crop, same flip/rotation
    assert hr.max() < 200  # never a held-out frame
    s.load_state(state)
    hr2, lr2, seeds2 = s.sample(32)
    assert torch.equal(hr, hr2) and torch.equal(lr, lr2) and torch.equal(seeds, seeds2)
    assert not torch.equal(hr, PatchSampler(src, 16, 4, seed=4, rotate=True).sample(32)[0])


def test_validation_crops_come_from_held_out_frames():
    src = _sources()
    hr, lr = validation_crops(src, 32, 4, 4)
    assert hr.shape == (4, 3, 32, 32) and lr.shape == (4, 3, 8, 8)
    assert (hr == 250).all() and (lr == 250).all()


def test_a_video_is_thinned_evenly_to_its_memory_budget():
    from esrgan_video.samples import sample_clip
    from esrgan_video.train.data import read_video

    clip = sample_clip("bikes.mp4", progress=False)  # 250 frames of 640x272
    frames, times = read_video(str(clip), max_frames=1000, max_bytes=20 * 3 * 640 * 272)
    assert len(frames) == 20 and frames[0].shape == (3, 272, 640) and frames[0].dtype == torch.uint8
    gaps = {round(float(b - a), 3) for a, b in zip(times, times[1:])}
    assert gaps == {0.52}  # every 13th frame at 25 fps


def test_a_phone_photo_is_trained_on_upright_against_its_upright_lr(tmp_path):
    """A still whose EXIF orientation says 'turn 90° clockwise' (a phone held upright) is read as a viewer shows
    it, by the upscaler's own reader (``video.images.read_image``): its pair with an upright LR image of the same
    name is made and matches (sideways, the HR would be 120x200 against an LR of 50x30: a scale mismatch)."""
    import numpy as np
    import skimage.data
    from PIL import Image

    from esrgan_video.train import TrainConfig
    from esrgan_video.train.data import load_sources, read_source
    from esrgan_video.train.degradations import bicubic_down

    upright = skimage.data.astronaut()[40:240, 200:320]  # 120 wide, 200 high
    hr_dir, lr_dir = tmp_path / "hr", tmp_path / "lr"
    hr_dir.mkdir()
    lr_dir.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned 90° anticlockwise; shown turned back
    for name in ("a", "b", "c"):
        Image.fromarray(np.ascontiguousarray(np.rot90(upright))).save(hr_dir / f"{name}.png", exif=exif.tobytes())
        down = bicubic_down(torch.from_numpy(upright).permute(2, 0, 1)[None].float() / 255, 4)
        Image.fromarray((down[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()).save(lr_dir / f"{name}.png")
    frames, keys = read_source(str(hr_dir), max_frames=10)
    assert keys == ["a", "b", "c"] and all(torch.equal(f, torch.from_numpy(upright).permute(2, 0, 1)) for f in frames)
    config = TrainConfig(data=[str(hr_dir)], lr_data=[str(lr_dir)], out=str(tmp_path / "run"), patch=16,
                         min_held_out=1)
    (src,) = load_sources(config, 4, 16, notice=lambda msg: pytest.fail(msg))
    assert src.hr[0].shape == (3, 200, 120) and src.lr[0].shape == (3, 50, 30) and not src.rejected


def test_a_variable_rate_video_is_thinned_over_its_real_frames(tmp_path):
    """20 frames 40 or 120 ms apart in Matroska (no frame count: duration × the 25 fps rate says 32): --max-frames 10
    keeps 10 frames spread over the whole clip (was 5: thinned by the estimate)."""
    import media

    from esrgan_video.train.data import read_video

    pts = [0]
    for i in range(1, 20):
        pts.append(pts[-1] + (40 if i % 3 else 120))
    clip = media.make_clip(tmp_path / "vfr.mkv", size=(32, 32), frames=20, pts=pts, time_base=Fraction(1, 1000))
    frames, times = read_video(str(clip), max_frames=10)
    assert len(frames) == 10 and times[0] == 0 and float(times[-1]) >= 1.0, times


def test_what_the_reader_says_about_a_source_is_told(train_clip, tmp_path):
    """Frames skipped as damaged, samples of more than 8 bits rounded to 8, videos in an image folder left out: each
    one notice naming the file or folder (the reader's notice was dropped, the others silent)."""
    import media
    import numpy as np
    from PIL import Image

    from esrgan_video.errors import InputError
    from esrgan_video.train.data import read_source
    from esrgan_video.video.images import write_image

    told: list[str] = []
    broken = media.make_corrupt(train_clip, tmp_path / "broken.mp4", frames=[5])
    frames, _ = read_source(str(broken), max_frames=100, notice=told.append)
    said = "broken.mp4: 1 frame(s) could not be decoded and were skipped, the first at 0.200 s"
    assert len(frames) < 16 and told == [said], told
    told.clear()
    frames, _ = read_source(str(broken), max_frames=4, notice=told.append)  # thinned: the last frames are not kept
    assert len(frames) == 4 and told == [said], told
    told.clear()
    deep = media.make_clip(tmp_path / "deep.mkv", codec="ffv1", pix_fmt="yuv420p10le", size=(32, 32), frames=3)
    read_source(str(deep), max_frames=100, notice=told.append)
    assert told == [f"{deep}: 10-bit video (yuv420p10le); training keeps its frames as 8-bit RGB, so the model "
                    "learns from them rounded to 8 bits"], told
    told.clear()
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "clip.mp4").write_bytes(train_clip.read_bytes())
    Image.fromarray(np.full((32, 32, 4), 9, np.uint8)).save(folder / "a.png")
    write_image(folder / "b.png", np.full((32, 32, 3), 9 * 257 + 100, np.uint16), None, 16)
    frames, keys = read_source(str(folder), max_frames=100, notice=told.append)
    assert keys == ["a", "b"] and torch.equal(frames[0], frames[1])  # 9·257 + 100 rounds to 9
    assert told == [f"{folder}: 1 video(s) in this image folder are not read [clip.mp4]; an image folder is one "
                    "source of stills: give videos to --data one by one",
                    f"{folder}: 1 of 2 images have 16-bit samples; training keeps them as 8-bit RGB, so the model "
                    "learns from them rounded to 8 bits",
                    f"{folder}: 1 of 2 images have an alpha channel; training reads their colour only (what lies "
                    "under transparent parts is trained on as it is stored)"], told
    told.clear()
    read_source(str(folder / "b.png"), max_frames=100, notice=told.append)
    assert told == [f"{folder / 'b.png'}: a 16-bit image; training keeps it as 8-bit RGB, so the model learns from "
                    "it rounded to 8 bits"], told
    (folder / "a.png").unlink()
    (folder / "b.png").unlink()
    with pytest.raises(InputError, match=r"no images found .*; it holds 1 video\(s\) \[clip.mp4\]: give videos to "
                                         r"--data one by one"):
        read_source(str(folder), max_frames=100)
    for name in ("d.mkv", "b.mp4", "c.mov"):  # named as every key list is (models.keys.list_keys), three at most
        (folder / name).write_bytes(b"")
    with pytest.raises(InputError, match=r"; it holds 4 video\(s\) \[b.mp4, c.mov, clip.mp4 and 1 more\]: give "):
        read_source(str(folder), max_frames=100)


def test_a_rotated_video_is_trained_on_upright_against_its_upright_lr(train_clip, tmp_path):
    """An HR video stored sideways with a 90° display matrix (a phone clip) is read as a player shows it, as a
    still is read by its EXIF orientation: its pair with an LR video of the upright picture is made and matches
    (read as stored, the HR was 96x64 against an LR of 16x24: a scale mismatch that did not name the rotation)."""
    import av
    import numpy as np

    from esrgan_video.errors import InputError
    from esrgan_video.train import TrainConfig
    from esrgan_video.train.data import load_sources
    from esrgan_video.train.degradations import bicubic_down

    hr, lr = tmp_path / "hr_rotated.mp4", tmp_path / "lr_upright.mp4"
    with av.open(str(train_clip)) as inp, av.open(str(hr), "w") as out:  # the same packets, a display matrix added
        st = out.add_stream_from_template(inp.streams.video[0])
        st.set_display_rotation(90)
        for pkt in inp.demux(video=0):
            if pkt.size:
                pkt.stream = st
                out.mux(pkt)
    with av.open(str(train_clip)) as inp, av.open(str(lr), "w") as out:
        st = out.add_stream("libx264", rate=25)
        st.width, st.height, st.pix_fmt, st.options = 16, 24, "yuv444p", {"crf": "4", "preset": "veryfast"}
        for frame in inp.decode(video=0):
            upright = np.rot90(frame.to_ndarray(format="rgb24"))  # the player's 90° counter-clockwise turn
            down = bicubic_down(torch.from_numpy(upright.copy()).permute(2, 0, 1)[None].float() / 255, 4)
            arr = (down[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
            for pkt in st.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")):
                out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
    told: list[str] = []
    config = TrainConfig(data=[str(hr)], lr_data=[str(lr)], out=str(tmp_path / "run"), patch=16)
    (src,) = load_sources(config, 4, 16, notice=told.append)
    assert told == [f"{hr}: a 90° display rotation; training reads its frames upright, as a player shows them (and "
                    "as images are read, by their EXIF orientation)"], told
    assert len(src.hr) == 16 and src.hr[0].shape == (3, 96, 64) and src.lr[0].shape == (3, 24, 16)
    assert not src.rejected
    # an LR stored sideways with nothing saying so: the mismatch says the two are turned a quarter from each other
    sideways = tmp_path / "lr_sideways.mp4"
    with av.open(str(train_clip)) as inp, av.open(str(sideways), "w") as out:
        st = out.add_stream("libx264", rate=25)
        st.width, st.height, st.pix_fmt = 24, 16, "yuv420p"
        for frame in inp.decode(video=0):
            for pkt in st.encode(frame.reformat(24, 16)):
                out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
    config = TrainConfig(data=[str(hr)], lr_data=[str(sideways)], out=str(tmp_path / "run"), patch=16)
    with pytest.raises(InputError, match=r"lr_sideways.mp4: LR frames are 24x16 but the HR frames of .*hr_rotated.mp4 "
                                         r"are 64x96, not x4 of them but turned a quarter \(both are read upright"):
        load_sources(config, 4, 16, notice=told.append)


def test_a_still_smaller_than_the_patch_is_named(tmp_path):
    """An image folder's stills may differ in size: the one smaller than the patch is named (was "frames are
    20x20" for the folder)."""
    import numpy as np

    from esrgan_video.errors import InputError
    from esrgan_video.train import TrainConfig
    from esrgan_video.train.data import load_sources
    from esrgan_video.video.images import write_image

    import skimage.data

    photo = skimage.data.astronaut()
    write_image(tmp_path / "a.png", np.ascontiguousarray(photo[:64, :96]), None, 8)
    write_image(tmp_path / "b.png", np.ascontiguousarray(photo[:20, :40]), None, 8)
    config = TrainConfig(data=[str(tmp_path)], out=str(tmp_path / "run"), patch=32)
    with pytest.raises(InputError, match=rf"^{tmp_path}: image b is 40x20, smaller than the 32-px training patch "):
        load_sources(config, 4, 32, notice=lambda msg: None)


def test_a_cropped_video_keeps_only_its_crop(train_clip):
    """``hr_crop``: each frame kept holds the crop's bytes, what ``max_bytes`` (``memory_gb``) counts per frame; the
    crop's view held the whole decoded frame (96x64 for a 32x16 crop: 12 times the count)."""
    from esrgan_video.train.data import read_video

    whole, _ = read_video(str(train_clip), max_frames=16)
    frames, _ = read_video(str(train_clip), max_frames=16, crop=(8, 4, 32, 16))
    assert len(frames) == len(whole) == 16
    for f, w in zip(frames, whole):
        assert f.shape == (3, 16, 32) and torch.equal(f, w[:, 4:20, 8:40])
        assert f.untyped_storage().nbytes() == 3 * 32 * 16, f.untyped_storage().nbytes()


def test_a_cropped_still_keeps_only_its_crop(tmp_path):
    """``hr_crop`` on a still: the crop is kept as its own storage (it was a view holding the whole image)."""
    import numpy as np
    import skimage.data

    from esrgan_video.train.data import read_still
    from esrgan_video.video.images import write_image

    photo = np.ascontiguousarray(skimage.data.astronaut()[:64, :96])
    write_image(tmp_path / "a.png", photo, None, 8)
    f = read_still(tmp_path / "a.png", crop=(8, 4, 32, 16))
    assert torch.equal(f, torch.from_numpy(photo[4:20, 8:40]).permute(2, 0, 1))
    assert f.is_contiguous() and f.untyped_storage().nbytes() == 3 * 32 * 16, f.untyped_storage().nbytes()
    assert torch.equal(read_still(tmp_path / "a.png"), torch.from_numpy(photo).permute(2, 0, 1))


def test_images_given_one_by_one_are_one_source_of_stills_and_pair_in_the_order_given(tmp_path):
    """``--data a.png b.png c.png`` (as documented: "image folders/files") is one source of stills, as a folder's
    images are: each file was its own source, which holds out 2 frames of its 1, so any image given by name was
    refused ('only 1 frame(s); at least 3 are needed'). Their ``--lr-data`` images pair one to one in the order given
    (names may differ); one image alone is still refused, with what to give instead."""
    import numpy as np
    import skimage.data

    from esrgan_video.errors import InputError
    from esrgan_video.train import TrainConfig
    from esrgan_video.train.data import load_sources
    from esrgan_video.train.degradations import bicubic_down
    from esrgan_video.video.images import write_image

    photo = skimage.data.astronaut()
    hr, lr = [], []
    for i in range(3):
        crop = np.ascontiguousarray(photo[64 * i:64 * i + 48, 100:164])
        write_image(tmp_path / f"shot{i}.png", crop, None, 8)
        hr.append(str(tmp_path / f"shot{i}.png"))
        down = bicubic_down(torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255, 4)[0]
        small = (down.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        write_image(tmp_path / f"dvd_{2 - i}.png", np.ascontiguousarray(small), None, 8)
        lr.append(str(tmp_path / f"dvd_{2 - i}.png"))
    # lr[i] (dvd_{2-i}) is shot i's: they pair by place, not by name
    (src,) = load_sources(TrainConfig(data=hr, out=str(tmp_path / "run"), patch=16), 4, 16, notice=pytest.fail)
    assert (len(src.hr), src.train, src.held) == (3, [0], [1, 2])
    assert torch.equal(src.hr[2], torch.from_numpy(photo[128:176, 100:164]).permute(2, 0, 1))
    config = TrainConfig(data=hr, lr_data=lr, out=str(tmp_path / "run"), patch=16)
    (paired,) = load_sources(config, 4, 16, notice=pytest.fail)
    assert len(paired.lr) == 3 and not paired.rejected  # each pair matches (a wrong pairing is ~15 dB)
    with pytest.raises(InputError, match=r"shot0.png: only 1 image\(s\); at least 3 are needed .*give more images"):
        load_sources(TrainConfig(data=hr[:1], out=str(tmp_path / "run"), patch=16), 4, 16, notice=pytest.fail)


def test_an_anamorphic_dvd_paired_with_a_blu_ray_is_told_the_rule_in_pixels_and_the_scale_that_fits(tmp_path):
    """A DVD (720x480 stored, SAR 32:27, shown 16:9) and a Blu-ray (1920x1080) of one episode, here at a tenth:
    the refusal says what the HR must be in stored pixels (exactly 4 × the LR, with its pixel shape), that the LR
    is anamorphic, and that the HR holds only x2 of it, with the x2 pair's size (it said only 'not x4 of them
    (crop them with hr_crop/lr_crop)': no crop makes such a pair)."""
    import media

    from esrgan_video.errors import InputError
    from esrgan_video.train import TrainConfig
    from esrgan_video.train.data import load_sources
    from esrgan_video.train.pairing import pair_rule

    dvd = media.make_clip(tmp_path / "dvd.mkv", size=(72, 48), frames=4, sar=Fraction(32, 27))
    bd = media.make_clip(tmp_path / "bd.mkv", size=(192, 108), frames=4)
    config = TrainConfig(data=[str(bd)], lr_data=[str(dvd)], out=str(tmp_path / "run"), patch=16)
    with pytest.raises(InputError) as e:
        load_sources(config, 4, 16, notice=lambda msg: None)
    msg = str(e.value)
    assert msg.startswith(f"{dvd}: LR frames are 72x48 but the HR frames of {bd} are 192x108, not x4 of them: ")
    assert "the HR must be exactly 288x192 (4 × 72x48) with the LR's pixel shape (SAR 32:27: the LR is anamorphic, " \
           "shown 85x48" in msg
    assert "holds only x2 of the LR" in msg and "resized to 144x96 (e.g. ffmpeg -vf scale=144:96,setsar=32:27)" in msg
    assert "\n" not in msg
    # the real sizes; a 4K master holds x4 of the DVD: resize it; an HR of another picture shape needs a crop first
    real = pair_rule((720, 480), (3840, 2160), 4, lr_sar=Fraction(32, 27))
    assert "resize the HR frames to 2880x1920 (e.g. ffmpeg -vf scale=2880:1920,setsar=32:27)" in real
    assert "differ in shape" not in real
    assert "differ in shape (1.333:1 vs 1.778:1 shown): cut both" in pair_rule((720, 576), (3840, 2160), 4,
                                                                               lr_sar=Fraction(16, 15))
    assert "not even x2" in pair_rule((720, 576), (1024, 576), 4, lr_sar=Fraction(64, 45))
    square = pair_rule((32, 24), (64, 48), 4)
    assert "SAR" not in square and "a x2 --base" in square


def test_an_interlaced_video_is_told_once_with_why_training_on_it_harms(train_clip, tmp_path):
    """Interlaced footage (the reader's rule: a field order in the stream, top or bottom first, or frames marked
    interlaced) trains a model on the combing of its fields: one notice names the file and says to deinterlace it
    first, in the upscale path's wording with training's reason (it said 'the models expect progressive frames', a
    reason for upscaling); a progressive clip gets none."""
    import av
    import numpy as np

    import media
    from esrgan_video.train import TrainConfig
    from esrgan_video.train.data import load_sources

    tff = media.make_clip(tmp_path / "tff.mkv", interlaced=True, frames=12, size=(96, 64))  # libx264 +ilme+ildct
    bff = tmp_path / "bff.mkv"  # FFV1 frames, the stream's field order bottom first (what a DV capture says)
    with av.open(str(bff), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
        s.codec_context.field_order = 3  # AV_FIELD_BB
        for i in range(12):
            rgb = np.random.default_rng(i).integers(0, 256, (64, 96, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts = i
            c.mux(s.encode(frame))
        c.mux(s.encode(None))
    for clip, order in ((tff, "tt"), (bff, "bb")):
        told: list[str] = []
        (src,) = load_sources(TrainConfig(data=[str(clip)], out=str(tmp_path / "run"), patch=16), 4, 16,
                              notice=told.append)
        assert len(src.hr) == 12
        assert told == [f"{clip}: the video is interlaced (field order {order}); deinterlace it first (e.g. in "
                        "VapourSynth) — a model trained on its frames learns the combing of their two fields as "
                        "detail"], told
    told = []
    load_sources(TrainConfig(data=[str(train_clip)], out=str(tmp_path / "run"), patch=16), 4, 16, notice=told.append)
    assert not any("interlaced" in m for m in told), told
