namespace IpvlanCni.Install.Tests;

/// <summary>The scratch image in the project's own podman storage (make image), run the way a cluster runs it.</summary>
public class ImageTests
{
    static Outcome Podman(params string[] args) => Command.Run(Repo.Podman, args, timeout: TimeSpan.FromMinutes(3));

    [Fact]
    public void Podman_runs_ipvlan_cni_VERSION_in_it()
    {
        var outcome = Podman("run", "--rm", Repo.Image, "ipvlan-cni", "VERSION");

        Assert.True(outcome.ExitCode == 0, outcome.ToString());
        Assert.StartsWith("{\"cniVersion\":\"1.1.0\",\"supportedVersions\":[", outcome.Stdout);
    }

    [Fact]
    public void The_agent_in_the_image_is_its_companion_executable()
    {
        var outcome = Podman("run", "--rm", Repo.Image, "ipvlan-cni", "agent", "--help");

        Assert.True(outcome.ExitCode == 0, outcome.ToString());
        Assert.StartsWith("Usage: ipvlan-cni agent", outcome.Stdout);
    }

    [Fact]
    public void The_image_holds_only_the_executables_and_is_tagged_with_the_version()
    {
        string id = Podman("create", Repo.Image).Stdout.Trim();
        try
        {
            using var temp = new TempFolder();
            string tar = Path.Join(temp.Path, "fs.tar");
            Assert.Equal(0, Podman("export", "--output", tar, id).ExitCode);
            var entries = Command.Succeed("tar", "-tf", tar).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(["usr/", "usr/bin/", "usr/bin/ipvlan-cni", "usr/bin/ipvlan-cni-agent", "usr/bin/ipvlan-cni-explain", "usr/bin/ipvlan-cni-install"], entries.Order());
        }
        finally
        {
            Podman("rm", id);
        }
        var version = Podman("image", "inspect", "--format", "{{index .Labels \"org.opencontainers.image.version\"}}", Repo.Image);
        Assert.Equal(Repo.Version, version.Stdout.Trim());
        Assert.True(File.Exists(Repo.Artifact($"ipvlan-cni_{Repo.Version}.oci.tar", "make image")));
    }

    [Fact]
    public void Install_in_the_image_writes_into_mounted_host_folders_as_the_init_container_does()
    {
        using var temp = new TempFolder();
        string bin = temp.Sub("bin"), conf = temp.Sub("net.d");

        var outcome = Podman("run", "--rm", "--read-only",
            "-v", $"{bin}:/host/opt/cni/bin", "-v", $"{conf}:/host/etc/cni/net.d", Repo.Image,
            "ipvlan-cni", "install", "--bin-dir", "/host/opt/cni/bin", "--conf-dir", "/host/etc/cni/net.d");

        Assert.True(outcome.ExitCode == 0, outcome.ToString());
        foreach (var (name, published) in Repo.Executables)
            Assert.Equal(File.ReadAllBytes(published), File.ReadAllBytes(Path.Join(bin, name)));
        Assert.Equal("ipvlan-cni", new FileInfo(Path.Join(bin, "ipvlan-cni-ipam")).LinkTarget);
    }
}
