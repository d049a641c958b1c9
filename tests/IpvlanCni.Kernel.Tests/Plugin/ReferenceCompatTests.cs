using System.Text.Json;
using System.Text.Json.Nodes;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;
using IpvlanCni.Plugin;
using IpvlanCni.Scenarios;

namespace IpvlanCni.Kernel.Tests.Plugin;

/// <summary>
/// A drop-in for Debian's reference plugins (containernetworking-plugins 1.1.1, /usr/lib/cni): its configurations
/// work with ours after changing only "type", the two plugins share one host-local store, and results look alike.
/// </summary>
public class ReferenceCompatTests : KernelTest
{
    const string ReferenceIpvlan = "/usr/lib/cni/ipvlan";

    public ReferenceCompatTests()
    {
        foreach (string binary in new[] { ReferenceIpvlan, "/usr/lib/cni/host-local" })
            if (!File.Exists(binary))
                throw new FileNotFoundException($"{binary} is missing: install containernetworking-plugins (make deps)");
    }

    /// <summary>
    /// The reference README's network, as libcni hands it to a plugin from a conflist (cniVersion and name
    /// injected), with master and dataDir adapted to the test node and stateDir left at its default.
    /// </summary>
    static JsonObject ReadmeNetwork(PluginRunner cni, string type, string cniVersion = "1.0.0") => new()
    {
        ["cniVersion"] = cniVersion,
        ["name"] = "mynet",
        ["type"] = type,
        ["master"] = cni.Node.MasterName,
        ["linkInContainer"] = false,
        ["ipam"] = new JsonObject { ["type"] = "host-local", ["subnet"] = "10.1.2.0/24", ["dataDir"] = cni.DataDir },
    };

    [Fact]
    public void The_readme_configuration_works_with_ours_after_changing_only_the_type()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var reference = ReadmeNetwork(cni, "ipvlan");
        var ours = ReadmeNetwork(cni, "ipvlan-cni");
        Assert.Equal(
            reference.Where(kv => kv.Key != "type").Select(kv => $"{kv.Key}={kv.Value?.ToJsonString()}"),
            ours.Where(kv => kv.Key != "type").Select(kv => $"{kv.Key}={kv.Value?.ToJsonString()}"));
        string containerId = UniqueName("readme"); // the default stateDir is shared by the whole sandbox boot
        var a = node.AddPod();
        var b = node.AddPod();

        var addA = cni.Add(ours, a, containerId).Succeeded();
        var addB = cni.Add(ours, b, containerId + "b").Succeeded();
        Assert.True(File.Exists(Path.Combine(PluginConfig.DefaultStateDir, "attachments", "mynet", $"{containerId}@eth0")));
        Assert.Equal(IpvlanMode.L2, a.Client.GetLink("eth0").IpvlanMode);
        Assert.True(IpPrefix.Parse("10.1.2.0/24").Contains(addA.Address()));
        Assert.True(a.Ping(addB.Address()));
        cni.Check(ours, a, containerId, addA).Succeeded();
        cni.Del(ours, a, containerId).Succeeded();
        cni.Del(ours, b, containerId + "b").Succeeded();
        Assert.False(File.Exists(Path.Combine(PluginConfig.DefaultStateDir, "attachments", "mynet", $"{containerId}@eth0")));
        Assert.False(cni.IsReserved("mynet", addA.Address()));
    }

    [Fact]
    public void The_reference_plugin_and_ours_share_one_host_local_store_without_collisions()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var reference = ReadmeNetwork(cni, "ipvlan").With("stateDir", cni.StateDir);
        var ours = ReadmeNetwork(cni, "ipvlan-cni").With("stateDir", cni.StateDir);
        var pods = Enumerable.Range(0, 4).Select(_ => node.AddPod()).ToList();

        var added = new List<CniCall>();
        for (int i = 0; i < pods.Count; i++)
        {
            bool theirs = i % 2 == 0;
            added.Add(cni.Run("ADD", theirs ? reference : ours, $"c{i}", pods[i].Path, "eth0", plugin: theirs ? ReferenceIpvlan : null).Succeeded());
        }
        var addresses = added.Select(a => a.Address()).ToList();
        Assert.Equal(addresses.Count, addresses.Distinct().Count());
        Assert.All(addresses, address => Assert.True(cni.IsReserved("mynet", address)));
        // One master, one port mode: the reference's slaves and ours reach each other.
        Assert.True(pods[1].Ping(addresses[0]), "our pod cannot reach the reference plugin's pod");
        Assert.True(pods[0].Ping(addresses[3]), "the reference plugin's pod cannot reach ours");

        cni.Run("DEL", reference, "c0", pods[0].Path, "eth0", plugin: ReferenceIpvlan).Succeeded();
        cni.Del(ours, pods[1], "c1").Succeeded();
        Assert.False(cni.IsReserved("mynet", addresses[0]));
        Assert.False(cni.IsReserved("mynet", addresses[1]));
        Assert.True(cni.IsReserved("mynet", addresses[2]));
        Assert.True(cni.IsReserved("mynet", addresses[3]));
        // Released addresses are reused by either plugin, still without collisions.
        var again = cni.Add(ours, pods[0], "c4").Succeeded().Address();
        Assert.DoesNotContain(again, addresses.Skip(2));
    }

    /// <summary>The result of an ADD has the reference's shape (same keys at the same places) in each version both speak.</summary>
    [Theory]
    [InlineData("0.3.1")]
    [InlineData("0.4.0")]
    [InlineData("1.0.0")]
    public void Results_have_the_reference_plugins_shape(string version)
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var routes = JsonNode.Parse("""[{"dst":"0.0.0.0/0"}]""");
        var reference = ReadmeNetwork(cni, "ipvlan", version).With("stateDir", cni.StateDir);
        var ours = ReadmeNetwork(cni, "ipvlan-cni", version).With("stateDir", cni.StateDir);
        reference.Ipam()["routes"] = routes!.DeepClone();
        ours.Ipam()["routes"] = routes.DeepClone();
        var a = node.AddPod();
        var b = node.AddPod();

        var theirs = cni.Run("ADD", reference, "ref", a.Path, "eth0", plugin: ReferenceIpvlan).Succeeded();
        var mine = cni.Add(ours, b, "ours").Succeeded();
        Assert.Equal(Shape(theirs.Json), Shape(mine.Json));
        Assert.Equal(theirs.Json.GetProperty("routes").GetRawText(), mine.Json.GetProperty("routes").GetRawText());
        // Both put the same routes into the pod.
        Assert.Equal(a.Route("0.0.0.0/0")?.Gateway, b.Route("0.0.0.0/0")?.Gateway);
    }

    /// <summary>
    /// Configurations as a user writes them for the reference (Go's encoding/json: keys match ignoring case, a later
    /// key overwrites an earlier one, null changes nothing; net.ParseIP: no leading zeros). {M} is the master ens11
    /// (not the default route's ens10, where a missed key would land the pod), {D} the IPAM data folder.
    /// </summary>
    public static TheoryData<string, string> CompatibilityTable() => new()
    {
        { "baseline", """{"master":"{M}","ipam":{"type":"host-local","subnet":"10.1.2.0/24","dataDir":"{D}"}}""" },
        { "Master", """{"Master":"{M}","ipam":{"type":"host-local","subnet":"10.1.2.0/24","dataDir":"{D}"}}""" },
        { "MASTER and Mode", """{"MASTER":"{M}","Mode":"l3","ipam":{"type":"host-local","subnet":"10.1.2.0/24","dataDir":"{D}"}}""" },
        { "mode then MODE", """{"master":"{M}","mode":"l2","MODE":"l3","ipam":{"type":"host-local","subnet":"10.1.2.0/24","dataDir":"{D}"}}""" },
        { "master then null", """{"master":"{M}","Master":null,"ipam":{"type":"host-local","subnet":"10.1.2.0/24","dataDir":"{D}"}}""" },
        { "MTU", """{"master":"{M}","MTU":1400,"ipam":{"type":"host-local","subnet":"10.1.2.0/24","dataDir":"{D}"}}""" },
        { "IPAM and Type", """{"master":"{M}","IPAM":{"Type":"host-local","Subnet":"10.1.2.0/24","DataDir":"{D}"}}""" },
        { "rangeStart", """{"master":"{M}","ipam":{"type":"host-local","subnet":"10.1.2.0/24","rangeStart":"10.1.2.50","dataDir":"{D}"}}""" },
        { "RANGESTART", """{"master":"{M}","ipam":{"type":"host-local","subnet":"10.1.2.0/24","RANGESTART":"10.1.2.60","dataDir":"{D}"}}""" },
        { "rangeStart with a leading zero", """{"master":"{M}","ipam":{"type":"host-local","subnet":"10.1.2.0/24","rangeStart":"10.1.2.050","dataDir":"{D}"}}""" },
        { "subnet with a leading zero", """{"master":"{M}","ipam":{"type":"host-local","subnet":"010.1.2.0/24","dataDir":"{D}"}}""" },
        { "gateway with a leading zero", """{"master":"{M}","ipam":{"type":"host-local","subnet":"10.1.2.0/24","gateway":"10.1.2.01","dataDir":"{D}"}}""" },
        { "IPv6 with zero-padded groups", """{"master":"{M}","ipam":{"type":"host-local","subnet":"fd00:0:0:1::/64","rangeStart":"fd00:0:0:1::00a","dataDir":"{D}"}}""" },
        { "IPv4-mapped rangeStart", """{"master":"{M}","ipam":{"type":"host-local","subnet":"10.1.2.0/24","rangeStart":"::ffff:10.1.2.70","dataDir":"{D}"}}""" },
    };

    /// <summary>
    /// Each configuration through the reference (ipvlan + host-local) and through ours on one node, one after the
    /// other: the same outcome (both refuse, or both attach the pod to the same master with the same mode, MTU and
    /// address).
    /// </summary>
    [Theory]
    [MemberData(nameof(CompatibilityTable))]
    public void A_configuration_the_reference_reads_gets_the_same_outcome_from_ours(string row, string body)
    {
        using var node = new TestNode();
        node.Client.CreateLink(new DummyLinkSpec("ens11"));
        node.Client.ChangeLink(node.Client.GetLink("ens11").Index, new LinkChange { Up = true });
        node.Client.AddRoute(new RouteInfo(IpPrefix.Parse("0.0.0.0/0")) { Gateway = System.Net.IPAddress.Parse("10.10.0.254"), LinkIndex = node.Master.Index });
        var cni = new PluginRunner(node);

        string Outcome(string type, string plugin, string dataDir)
        {
            var pod = node.AddPod();
            string stdin = $$"""{"cniVersion":"1.0.0","name":"compat","type":"{{type}}","stateDir":"{{cni.StateDir}}",""" +
                body.Replace("{M}", "ens11").Replace("{D}", dataDir)[1..];
            var added = cni.Run("ADD", new JsonObject(), "c-" + type, pod.Path, "eth0", stdin: stdin, plugin: plugin);
            if (added.ExitCode != 0)
                return $"refused ({added.ErrorMessage.Length > 0})";
            var eth0 = pod.Client.GetLink("eth0");
            string outcome = $"parent {node.Client.TryGetLink(eth0.ParentIndex)?.Name}, mode {eth0.IpvlanMode}, mtu {eth0.Mtu}, {string.Join(",", added.Addresses)}";
            cni.Run("DEL", new JsonObject(), "c-" + type, pod.Path, "eth0", stdin: stdin, plugin: plugin).Succeeded($"DEL {type} {row}");
            return outcome;
        }

        string theirs = Outcome("ipvlan", ReferenceIpvlan, Path.Combine(cni.DataDir, "reference"));
        string ours = Outcome("ipvlan-cni", CniRuntime.PluginPath, Path.Combine(cni.DataDir, "ours"));
        Assert.True(theirs == ours, $"{row}: the reference: {theirs}; ours: {ours}");
    }

    /// <summary>Every path to a value ("ips[].gateway"), values left out, sorted.</summary>
    static List<string> Shape(JsonElement element)
    {
        var paths = new SortedSet<string>(StringComparer.Ordinal);
        void Walk(JsonElement e, string path)
        {
            switch (e.ValueKind)
            {
                case JsonValueKind.Object:
                    foreach (var p in e.EnumerateObject())
                        Walk(p.Value, path.Length == 0 ? p.Name : $"{path}.{p.Name}");
                    break;
                case JsonValueKind.Array:
                    foreach (var item in e.EnumerateArray())
                        Walk(item, path + "[]");
                    break;
                default:
                    paths.Add($"{path}:{e.ValueKind}");
                    break;
            }
        }
        Walk(element, "");
        return [.. paths];
    }
}
