"""cgroup discovery on fake /proc and /sys/fs/cgroup trees, every layout."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from faaslab._errors import SamplingError
from faaslab._sampling._cgroup import (
    MemoryFiles,
    cgroup_version,
    describe_host_cgroups,
    find_memory_files,
)

CID = "3f2a9c0d1e4b5a6978877665544332211aabbccddeeff00112233445566778899"[:64]
PID = 4242


class Host:
    """A fake host: a /proc with one process and a /sys/fs/cgroup tree."""

    def __init__(self, tmp_path: Path) -> None:
        self.proc = tmp_path / "proc"
        self.cgroup = tmp_path / "cgroup"
        self.cgroup.mkdir()

    def process(self, cgroup_text: str, pid: int = PID) -> int:
        (self.proc / str(pid)).mkdir(parents=True)
        (self.proc / str(pid) / "cgroup").write_text(cgroup_text)
        return pid

    def files(self, directory: str, **contents: str) -> Path:
        """Create `directory` (relative to the cgroup root) with memory files;
        keyword names use _ for . (memory_current -> memory.current)."""
        path = self.cgroup / directory
        path.mkdir(parents=True, exist_ok=True)
        for name, text in contents.items():
            (path / name.replace("_", ".", 1)).write_text(text)
        return path

    def v1(self, directory: str, usage: str = "1000\n", peak: str = "2000\n") -> Path:
        return self.files(
            f"memory/{directory}", memory_usage_in_bytes=usage, memory_max_usage_in_bytes=peak
        )

    def v2(self, directory: str, *, peak: bool = True, base: str = "") -> Path:
        contents = {"memory_current": "1000\n"}
        if peak:
            contents["memory_peak"] = "2000\n"
        return self.files(f"{base}{directory}", **contents)

    def find(self, pid: int | None = PID, **kwargs: str) -> MemoryFiles:
        return find_memory_files(pid, proc_root=self.proc, cgroup_root=self.cgroup, **kwargs)


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


V1_LINES = "12:pids:/docker/{p}\n5:memory:{path}\n4:cpu,cpuacct:{path}\n1:name=systemd:{path}\n"


# -- v1 ------------------------------------------------------------------------


def test_v1_cgroupfs(host: Host) -> None:
    directory = host.v1(f"docker/{CID}")
    host.process(V1_LINES.format(p=CID, path=f"/docker/{CID}"))
    found = host.find()
    assert found == MemoryFiles(
        usage=str(directory / "memory.usage_in_bytes"),
        peak=str(directory / "memory.max_usage_in_bytes"),
        version=1,
        layout="v1-cgroupfs",
        cgroup=f"/docker/{CID}",
    )


def test_v1_systemd(host: Host) -> None:
    scope = f"system.slice/docker-{CID}.scope"
    host.v1(scope)
    host.process(V1_LINES.format(p=CID, path=f"/{scope}"))
    found = host.find()
    assert (found.version, found.layout, found.cgroup) == (1, "v1-systemd", f"/{scope}")
    assert found.usage.endswith(f"memory/{scope}/memory.usage_in_bytes")


def test_v1_custom_parent(host: Host) -> None:
    host.v1(f"benchmarks/run-7/{CID}")
    host.process(V1_LINES.format(p=CID, path=f"/benchmarks/run-7/{CID}"))
    assert host.find().layout == "v1-custom"


def test_v1_combined_controllers_mounted_together(host: Host) -> None:
    # memory co-mounted with cpu: the hierarchy lives at "cpu,memory", no "memory" dir.
    host.files(
        f"cpu,memory/docker/{CID}",
        memory_usage_in_bytes="5\n",
        memory_max_usage_in_bytes="6\n",
    )
    host.process(f"3:cpu,memory:/docker/{CID}\n")
    found = host.find()
    assert found.usage == str(host.cgroup / f"cpu,memory/docker/{CID}/memory.usage_in_bytes")
    assert found.layout == "v1-cgroupfs"


def test_v1_combined_controllers_with_memory_symlink_dir(host: Host) -> None:
    host.v1(f"docker/{CID}")
    host.process(f"3:memory,hugetlb:/docker/{CID}\n")
    assert host.find().version == 1


# -- v2 ------------------------------------------------------------------------


def test_v2_systemd(host: Host) -> None:
    host.files("", cgroup_controllers="cpu memory pids\n")
    scope = f"system.slice/docker-{CID}.scope"
    directory = host.v2(scope)
    host.process(f"0::/{scope}\n")
    assert host.find() == MemoryFiles(
        usage=str(directory / "memory.current"),
        peak=str(directory / "memory.peak"),
        version=2,
        layout="v2-systemd",
        cgroup=f"/{scope}",
    )


def test_v2_cgroupfs(host: Host) -> None:
    host.v2(f"docker/{CID}")
    host.process(f"0::/docker/{CID}\n")
    found = host.find()
    assert (found.version, found.layout) == (2, "v2-cgroupfs")


def test_v2_custom_parent(host: Host) -> None:
    host.v2(f"faas.slice/{CID}")
    host.process(f"0::/faas.slice/{CID}\n")
    assert host.find().layout == "v2-custom"


def test_v2_without_peak_file_has_no_peak(host: Host) -> None:
    # memory.peak exists from Linux 5.19 on.
    host.v2(f"docker/{CID}", peak=False)
    host.process(f"0::/docker/{CID}\n")
    found = host.find()
    assert found.peak is None
    assert found.usage.endswith("memory.current")


# -- hybrid ----------------------------------------------------------------------


def test_hybrid_prefers_the_v1_memory_controller(host: Host) -> None:
    host.files("unified", cgroup_controllers="\n")
    host.v1(f"docker/{CID}")
    host.v2(f"docker/{CID}", base="unified/")  # the v2 tree carries no memory here
    host.process(f"5:memory:/docker/{CID}\n0::/docker/{CID}\n")
    found = host.find()
    assert (found.version, found.layout) == (1, "v1-cgroupfs")


def test_hybrid_uses_the_unified_tree_when_v1_lacks_memory(host: Host) -> None:
    scope = f"system.slice/docker-{CID}.scope"
    host.files("unified", cgroup_controllers="memory\n")
    directory = host.v2(scope, base="unified/")
    host.process(f"5:cpu:/{scope}\n0::/{scope}\n")
    found = host.find()
    assert found.usage == str(directory / "memory.current")
    assert (found.version, found.layout) == (2, "v2-systemd")


# -- namespaces and search ---------------------------------------------------------


def test_other_namespace_falls_back_to_search_by_container_id(host: Host) -> None:
    # Seen from a cgroup namespace, the container's path is just "/".
    host.files("", cgroup_controllers="memory\n")
    host.v2(f"system.slice/docker-{CID}.scope")
    host.process("0::/\n")
    found = host.find(container_id=CID)
    assert found.found_by == "search"
    assert found.layout == "v2-systemd"
    assert found.cgroup == f"/system.slice/docker-{CID}.scope"


def test_search_in_v1_memory_hierarchy(host: Host) -> None:
    host.v1(f"kubepods/burstable/pod1/{CID}")
    host.process("5:memory:/\n")  # root: no usage file at the top (usage exists only in children)
    found = host.find(container_id=CID)
    assert (found.version, found.found_by) == (1, "search")
    assert found.cgroup == f"/kubepods/burstable/pod1/{CID}"


def test_search_without_pid(host: Host) -> None:
    host.v1(f"docker/{CID}")
    assert host.find(None, container_id=CID).found_by == "search"


def test_parent_references_are_clamped_at_the_root(host: Host) -> None:
    host.v2(f"docker/{CID}")
    host.process(f"0::/../../docker/{CID}\n")
    assert host.find().usage == str(host.cgroup / f"docker/{CID}/memory.current")


# -- failures ----------------------------------------------------------------------


def test_not_found_says_what_was_tried(host: Host) -> None:
    host.process(f"5:memory:/docker/{CID}\n0::/docker/{CID}\n")
    with pytest.raises(SamplingError) as raised:
        host.find(container_id=CID)
    message = str(raised.value)
    assert f"memory/docker/{CID}/memory.usage_in_bytes (missing)" in message
    assert f"docker/{CID}/memory.current (missing)" in message
    assert f"search for {CID}: no memory hierarchy" in message


def test_process_gone(host: Host) -> None:
    with pytest.raises(SamplingError, match="process is gone"):
        host.find()


def test_usage_that_is_not_a_number_is_skipped(host: Host) -> None:
    host.v1(f"docker/{CID}", usage="max\n")
    host.process(f"5:memory:/docker/{CID}\n")
    with pytest.raises(SamplingError, match="does not hold a number"):
        host.find()


def test_usage_that_is_a_directory_is_unreadable(host: Host) -> None:
    (host.cgroup / f"memory/docker/{CID}/memory.usage_in_bytes").mkdir(parents=True)
    host.process(f"5:memory:/docker/{CID}\n")
    with pytest.raises(SamplingError, match="a directory"):
        host.find()


def test_permission_denied_is_reported(host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    # We run as root, for whom mode bits do not deny: fake the kernel's answer.
    host.v1(f"docker/{CID}")
    host.process(f"5:memory:/docker/{CID}\n")
    real_open = os.open

    def deny(path: str | os.PathLike[str], flags: int, *args: int) -> int:
        if str(path).endswith("memory.usage_in_bytes"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", deny)
    with pytest.raises(SamplingError, match="permission denied"):
        host.find()


def test_unreadable_proc_file(host: Host) -> None:
    (host.proc / str(PID) / "cgroup").mkdir(parents=True)  # reading it fails (EISDIR)
    with pytest.raises(SamplingError, match="Is a directory"):
        host.find()


# -- host description ----------------------------------------------------------------


def test_cgroup_version(tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cgroup.controllers").write_text("memory\n")
    hybrid = tmp_path / "hybrid"
    (hybrid / "unified").mkdir(parents=True)
    (hybrid / "unified" / "cgroup.controllers").write_text("\n")
    v1 = tmp_path / "v1"
    (v1 / "memory").mkdir(parents=True)
    (v1 / "memory" / "cgroup.procs").write_text("1\n")
    assert cgroup_version(v2) == "v2"
    assert cgroup_version(hybrid) == "hybrid"
    assert cgroup_version(v1) == "v1"
    assert cgroup_version(tmp_path / "absent") == "none"


def test_describe_host_cgroups_on_a_hybrid_host(host: Host) -> None:
    (host.cgroup / "unified").mkdir()
    (host.cgroup / "unified" / "cgroup.controllers").write_text("hugetlb\n")
    (host.proc / "self").mkdir(parents=True)
    (host.proc / "self" / "mounts").write_text(
        f"cgroup {host.cgroup}/memory cgroup rw,nosuid,relatime,memory 0 0\n"
        f"cgroup {host.cgroup}/cpu,cpuacct cgroup rw,relatime,cpu,cpuacct 0 0\n"
        f"cgroup {host.cgroup}/systemd cgroup rw,xattr,name=systemd 0 0\n"
        f"cgroup2 {host.cgroup}/unified cgroup2 rw,nsdelegate 0 0\n"
        "proc /proc proc rw 0 0\n"
    )
    (host.proc / "self" / "cgroup").write_text("7:memory:/user.slice\n0::/user.slice\n")
    described = describe_host_cgroups(cgroup_root=host.cgroup, proc_root=host.proc)
    assert described.version == "hybrid"
    assert described.memory_hierarchy == "v1"
    assert described.v1_controllers == {
        "memory": f"{host.cgroup}/memory",
        "cpu": f"{host.cgroup}/cpu,cpuacct",
        "cpuacct": f"{host.cgroup}/cpu,cpuacct",
        "name=systemd": f"{host.cgroup}/systemd",
    }
    assert described.v2_mount == f"{host.cgroup}/unified"
    assert described.v2_controllers == ("hugetlb",)
    assert described.own_memory_cgroup == "/user.slice"


def test_describe_host_cgroups_on_a_v2_host(host: Host) -> None:
    (host.cgroup / "cgroup.controllers").write_text("cpu io memory pids\n")
    (host.proc / "self").mkdir(parents=True)
    (host.proc / "self" / "mounts").write_text(f"cgroup2 {host.cgroup} cgroup2 rw 0 0\n")
    (host.proc / "self" / "cgroup").write_text("0::/user.slice/session-1.scope\n")
    described = describe_host_cgroups(cgroup_root=host.cgroup, proc_root=host.proc)
    assert (described.version, described.memory_hierarchy) == ("v2", "v2")
    assert described.v1_controllers == {}
    assert described.own_memory_cgroup == "/user.slice/session-1.scope"


def test_this_host_is_described_without_error() -> None:
    described = describe_host_cgroups()
    assert described.version in {"v1", "v2", "hybrid", "none"}
