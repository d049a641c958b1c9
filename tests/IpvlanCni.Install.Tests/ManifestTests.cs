using System.Text.Json;
using System.Text.RegularExpressions;
using IpvlanCni.Cni;

namespace IpvlanCni.Install.Tests;

/// <summary>The checker's three runs, once for the class: each costs a TypeScript program of the Kubernetes types.</summary>
public sealed class ManifestCheck
{
    public static readonly string Deploy = Path.Join(Repo.Root, "deploy", "kubernetes");
    public static readonly string Fixtures = Path.Join(AppContext.BaseDirectory, "Fixtures");

    public Outcome Deployment { get; } = Check(Deploy);
    public Outcome Networks { get; } = Check("--configs", Path.Join(Deploy, "networks"));
    public Outcome Broken { get; } = Check(Fixtures);

    static Outcome Check(params string[] args)
    {
        string checker = Path.Join(Repo.Root, "tools", "manifest-check");
        if (!Directory.Exists(Path.Join(checker, "node_modules")))
            throw new DirectoryNotFoundException($"{checker}/node_modules is missing: run make manifest-deps first (make test does)");
        return Command.Run("node", [Path.Join(checker, "check.mjs"), .. args]);
    }

    /// <summary>The NADs' CNI configurations by file name, as the checker extracted them.</summary>
    public JsonElement NetworkOf(string file)
    {
        Assert.True(Networks.ExitCode == 0, Networks.ToString());
        var all = JsonDocument.Parse(Networks.Stdout).RootElement.EnumerateArray().ToList();
        return Assert.Single(all, n => Path.GetFileName(n.GetProperty("file").GetString()) == file);
    }
}

/// <summary>
/// deploy/kubernetes against the Kubernetes schemas (kubernetes-models' validators and, for unknown fields, its
/// TypeScript interfaces; Multus's CRD schema) through
/// tools/manifest-check (make manifest-deps installs it), and the networks' CNI configurations against our parser.
/// </summary>
public class ManifestTests(ManifestCheck check) : IClassFixture<ManifestCheck>
{
    [Fact]
    public void Every_manifest_is_valid_against_the_schemas()
    {
        var outcome = check.Deployment;

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
    [InlineData("unknown-field.yaml", "DaemonSet ipvlan-cni/typo: Object literal may only specify known properties, and '\"securityContxt\"' does not exist in type 'IContainer'")]
    public void The_checker_refuses_what_the_API_server_would(string fixture, string message)
    {
        var outcome = check.Broken;

        Assert.Equal(1, outcome.ExitCode);
        Assert.Contains($"{Path.Join(ManifestCheck.Fixtures, fixture)}: {message}", outcome.Stderr);
        Assert.EndsWith("4 objects, 4 problems\n", outcome.Stdout);
    }

    public static TheoryData<string> Networks() =>
        [.. Directory.GetFiles(Path.Join(ManifestCheck.Deploy, "networks"), "*.yaml").Select(f => Path.GetFileName(f)).Order()];

    [Theory]
    [MemberData(nameof(Networks))]
    public void Each_networks_CNI_configuration_passes_the_plugins_parser(string file)
    {
        var network = check.NetworkOf(file);
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
        var plugins = Networks().Cast<object[]>().Select(row => check.NetworkOf((string)row[0]).GetProperty("config"))
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
        string text = File.ReadAllText(Path.Join(ManifestCheck.Deploy, "ipvlan-cni.yaml"));

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
