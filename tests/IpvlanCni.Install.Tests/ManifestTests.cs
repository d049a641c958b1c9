using System.Text.Json;
using System.Text.RegularExpressions;
using IpvlanCni.Cni;

namespace IpvlanCni.Install.Tests;

/// <summary>
/// deploy/kubernetes against the Kubernetes schemas (kubernetes-models' validators, Multus's CRD schema) through
/// tools/manifest-check (make manifest-deps installs it), and the networks' CNI configurations against our parser.
/// </summary>
public class ManifestTests
{
    static readonly string Deploy = Path.Join(Repo.Root, "deploy", "kubernetes");
    static readonly string Fixtures = Path.Join(AppContext.BaseDirectory, "Fixtures");

    static Outcome Check(params string[] args)
    {
        string checker = Path.Join(Repo.Root, "tools", "manifest-check");
        if (!Directory.Exists(Path.Join(checker, "node_modules")))
            throw new DirectoryNotFoundException($"{checker}/node_modules is missing: run make manifest-deps first (make test does)");
        return Command.Run("node", [Path.Join(checker, "check.mjs"), .. args]);
    }

    [Fact]
    public void Every_manifest_is_valid_against_the_schemas()
    {
        var outcome = Check(Deploy);

        Assert.True(outcome.ExitCode == 0, outcome.ToString());
        foreach (var kind in new[] { "Namespace ipvlan-cni", "ServiceAccount ipvlan-cni/ipvlan-cni", "DaemonSet ipvlan-cni/ipvlan-cni" })
            Assert.Contains($"ipvlan-cni.yaml: {kind}: valid", outcome.Stdout);
        Assert.Equal(4, Regex.Matches(outcome.Stdout, "NetworkAttachmentDefinition default/[a-z0-9-]+: valid").Count);
        Assert.EndsWith("7 objects, 0 problems\n", outcome.Stdout);
    }

    [Theory]
    [InlineData("bad-daemonset.yaml", "DaemonSet ipvlan-cni/bad: data/spec/template/spec/containers/0/securityContext/capabilities/add must be array")]
    [InlineData("bad-nad.yaml", "NetworkAttachmentDefinition bad: /spec/config must be string")]
    [InlineData("bad-meta.yaml", "NetworkAttachmentDefinition bad: data/labels/tier must be string")]
    public void The_checker_refuses_what_the_API_server_would(string fixture, string message)
    {
        var outcome = Check(Path.Join(Fixtures, fixture));

        Assert.Equal(1, outcome.ExitCode);
        Assert.Contains(message, outcome.Stderr);
    }

    public static TheoryData<string> Networks() =>
        [.. Directory.GetFiles(Path.Join(Deploy, "networks"), "*.yaml").Select(f => Path.GetFileName(f)).Order()];

    [Theory]
    [MemberData(nameof(Networks))]
    public void Each_networks_CNI_configuration_passes_the_plugins_parser(string file)
    {
        var outcome = Check("--configs", Path.Join(Deploy, "networks", file));
        Assert.True(outcome.ExitCode == 0, outcome.ToString());
        using var json = JsonDocument.Parse(outcome.Stdout);
        var network = Assert.Single(json.RootElement.EnumerateArray());
        var config = network.GetProperty("config");
        Assert.Equal(network.GetProperty("name").GetString(), config.GetProperty("name").GetString());

        byte[] bytes = JsonSerializer.SerializeToUtf8Bytes(config);
        // Multus hands either a single plugin's configuration or a conflist, as the config's shape says.
        if (config.TryGetProperty("plugins", out _))
            NetworkConfigCheck.CheckConflist(bytes);
        else
        {
            Assert.Equal("ipvlan-cni", config.GetProperty("type").GetString());
            NetworkConfigCheck.CheckPlugin(bytes);
        }
    }

    [Fact]
    public void The_networks_cover_l2_with_host_access_l3_cluster_IPAM_and_DHCP()
    {
        var outcome = Check("--configs", Path.Join(Deploy, "networks"));
        Assert.True(outcome.ExitCode == 0, outcome.ToString());
        var plugins = JsonDocument.Parse(outcome.Stdout).RootElement.EnumerateArray()
            .Select(n => n.GetProperty("config"))
            .Select(c => c.TryGetProperty("plugins", out var list) ? list[0] : c)
            .ToList();

        Assert.Contains(plugins, p => p.GetProperty("mode").GetString() == "l2" && p.TryGetProperty("hostAccess", out _));
        Assert.Contains(plugins, p => p.GetProperty("mode").GetString() == "l3");
        var cluster = Assert.Single(plugins, p => p.GetProperty("ipam").GetProperty("type").GetString() == "ipvlan-cni-ipam").GetProperty("ipam");
        Assert.True(cluster.GetProperty("etcdEndpoints").GetArrayLength() > 0);
        Assert.True(cluster.GetProperty("ranges").GetArrayLength() > 0);
        Assert.Single(plugins, p => p.GetProperty("ipam").GetProperty("type").GetString() == "ipvlan-cni-dhcp");
    }

    [Fact]
    public void The_DaemonSet_runs_this_version_unprivileged_with_only_the_capabilities_it_needs()
    {
        string text = File.ReadAllText(Path.Join(Deploy, "ipvlan-cni.yaml"));

        var images = Regex.Matches(text, @"^\s+image: (\S+)$", RegexOptions.Multiline).Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(2, images.Count);
        Assert.All(images, image => Assert.Equal(Repo.Image, image));
        Assert.DoesNotContain("privileged: true", text);
        Assert.DoesNotContain("hostPID: true", text);
        Assert.Contains("hostNetwork: true", text);
        Assert.Contains("""add: ["NET_ADMIN", "NET_RAW", "SYS_ADMIN"]""", text);
        Assert.Contains("""command: ["ipvlan-cni", "install", "--bin-dir", "/host/opt/cni/bin", "--conf-dir", "/host/etc/cni/net.d"]""", text);
        Assert.Contains("""command: ["ipvlan-cni", "agent"]""", text);
    }
}
