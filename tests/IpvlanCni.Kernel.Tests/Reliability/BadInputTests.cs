using System.Text.Json.Nodes;
using IpvlanCni.Cni;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Scenarios;

namespace IpvlanCni.Kernel.Tests.Reliability;

/// <summary>
/// One node for the whole table: network "bad" with a one-address range, already used by pod "primed", so the store,
/// the state folder and the lock files exist and every hostile request must leave them exactly as they are.
/// </summary>
public sealed class BadInputNode : IDisposable
{
    public const string Network = "bad";
    public const string PrimedContainer = "primed";

    public BadInputNode()
    {
        Node = new TestNode();
        Cni = new PluginRunner(Node);
        Pod = Node.AddPod();
        Config = Cni.Config(Network, "10.10.0.0/24");
        Config["ipam"]!["rangeStart"] = "10.10.0.50";
        Config["ipam"]!["rangeEnd"] = "10.10.0.50";
        Primed = Cni.Add(Config, Pod, PrimedContainer).Succeeded();
        Junk = $"/tmp/{Node.Name}-junk";
        Directory.CreateDirectory(Junk);
        File.WriteAllText(RegularFile, "not a namespace");
        Baseline = Snapshot();
    }

    public TestNode Node { get; }
    public PluginRunner Cni { get; }
    public TestPod Pod { get; }
    public JsonObject Config { get; }
    public CniCall Primed { get; }
    /// <summary>Outside the state and IPAM folders: for paths that are not namespaces.</summary>
    public string Junk { get; }
    public string RegularFile => $"{Junk}/file";
    /// <summary>The node after priming: every request of the table must leave it exactly so.</summary>
    public NodeSnapshot Baseline { get; }

    /// <summary>The plugin's folders and the node's /tmp folder: nothing outside may appear, nothing inside may change.</summary>
    public NodeSnapshot Snapshot() => NodeSnapshot.Take(Node, $"/tmp/{Node.Name}", Cni.NodeStateDir);

    public void Dispose()
    {
        Directory.Delete(Junk, recursive: true);
        Node.Dispose();
    }
}

/// <summary>
/// Malformed and hostile requests through the published binary: each gets the spec's error JSON with the right code
/// and a message naming the field or variable, a non-zero exit, and leaves the node exactly as it was.
/// </summary>
public class BadInputTests(BadInputNode fixture) : KernelTest, IClassFixture<BadInputNode>
{
    /// <summary>Any hostile name carries it: no file with it in its name may appear anywhere.</summary>
    const string EscapeMarker = "escapedbyipvlancni";

    /// <summary>A request: the environment of an ADD by container "c-bad" for eth1 in the primed pod, edited; stdin the node's config, edited.</summary>
    sealed record Request(Dictionary<string, string> Env, string Stdin);

    sealed record Case(int Code, string Names, Func<BadInputNode, Request> Build);

    static Request Add(BadInputNode n, Action<Dictionary<string, string>>? env = null, Action<JsonObject>? config = null, string? stdin = null)
    {
        var environment = CniRuntime.Environment("ADD", "c-bad", n.Pod.Path, "eth1");
        env?.Invoke(environment);
        var json = (JsonObject)n.Config.DeepClone();
        config?.Invoke(json);
        return new Request(environment, stdin ?? json.ToJsonString());
    }

    static Request Command(BadInputNode n, string command, Action<JsonObject> config, string containerId = "c-bad", string ifName = "eth1") =>
        Add(n, env => { env["CNI_COMMAND"] = command; env["CNI_CONTAINERID"] = containerId; env["CNI_IFNAME"] = ifName; }, config);

    static Action<JsonObject> Ipam(string key, JsonNode? value) => c => c["ipam"]![key] = value;
    static Action<JsonObject> Subnet(string subnet) => c =>
    {
        var ipam = c["ipam"]!.AsObject();
        ipam.Remove("rangeStart");
        ipam.Remove("rangeEnd");
        ipam["subnet"] = subnet;
    };
    static JsonArray RangeSet(params (string Subnet, string? Start, string? End)[] ranges) =>
        new(ranges.Select(r =>
        {
            var range = new JsonObject { ["subnet"] = r.Subnet };
            if (r.Start is not null) range["rangeStart"] = r.Start;
            if (r.End is not null) range["rangeEnd"] = r.End;
            return (JsonNode)range;
        }).ToArray());
    static Action<JsonObject> Ranges(params JsonArray[] sets) => c =>
    {
        var ipam = c["ipam"]!.AsObject();
        foreach (var key in new[] { "subnet", "rangeStart", "rangeEnd" })
            ipam.Remove(key);
        ipam["ranges"] = new JsonArray(sets.Cast<JsonNode>().ToArray());
    };

    static string Long(int length) => new('a', length);

    static readonly Dictionary<string, Case> Cases = new()
    {
        // The environment (spec code 4: the message names the variable).
        ["no CNI_COMMAND"] = new(4, "CNI_COMMAND", n => Add(n, e => e.Remove("CNI_COMMAND"))),
        ["unknown CNI_COMMAND"] = new(4, "CNI_COMMAND", n => Add(n, e => e["CNI_COMMAND"] = "ATTACH")),
        ["lower-case CNI_COMMAND"] = new(4, "CNI_COMMAND", n => Add(n, e => e["CNI_COMMAND"] = "add")),
        ["no CNI_CONTAINERID"] = new(4, "CNI_CONTAINERID", n => Add(n, e => e.Remove("CNI_CONTAINERID"))),
        ["no CNI_NETNS"] = new(4, "CNI_NETNS", n => Add(n, e => e.Remove("CNI_NETNS"))),
        ["no CNI_IFNAME"] = new(4, "CNI_IFNAME", n => Add(n, e => e.Remove("CNI_IFNAME"))),
        ["container ID ../.."] = new(4, "CNI_CONTAINERID", n => Add(n, e => e["CNI_CONTAINERID"] = $"../../{EscapeMarker}")),
        ["container ID with /"] = new(4, "CNI_CONTAINERID", n => Add(n, e => e["CNI_CONTAINERID"] = $"a/{EscapeMarker}")),
        ["container ID with @"] = new(4, "CNI_CONTAINERID", n => Add(n, e => e["CNI_CONTAINERID"] = "a@eth0")),
        ["container ID with newline"] = new(4, "CNI_CONTAINERID", n => Add(n, e => e["CNI_CONTAINERID"] = "a\nb")),
        ["container ID of 300 characters"] = new(4, "CNI_CONTAINERID", n => Add(n, e => e["CNI_CONTAINERID"] = Long(300))),
        ["ifname ../x"] = new(4, "CNI_IFNAME", n => Add(n, e => e["CNI_IFNAME"] = $"../{EscapeMarker[..8]}")),
        ["ifname .."] = new(4, "CNI_IFNAME", n => Add(n, e => e["CNI_IFNAME"] = "..")),
        ["ifname of 16 bytes"] = new(4, "CNI_IFNAME", n => Add(n, e => e["CNI_IFNAME"] = Long(16))),
        ["ifname with a space"] = new(4, "CNI_IFNAME", n => Add(n, e => e["CNI_IFNAME"] = "eth 1")),
        ["ifname with a colon"] = new(4, "CNI_IFNAME", n => Add(n, e => e["CNI_IFNAME"] = "eth0:1")),
        ["netns of 5000 characters"] = new(4, "CNI_NETNS", n => Add(n, e => e["CNI_NETNS"] = "/" + Long(4999))),
        ["netns a regular file"] = new(4, "CNI_NETNS", n => Add(n, e => e["CNI_NETNS"] = n.RegularFile)),
        ["netns a directory"] = new(4, "CNI_NETNS", n => Add(n, e => e["CNI_NETNS"] = n.Junk)),
        ["netns a mount namespace"] = new(4, "CNI_NETNS", n => Add(n, e => e["CNI_NETNS"] = "/proc/self/ns/mnt")),
        ["netns missing"] = new(4, "CNI_NETNS", n => Add(n, e => e["CNI_NETNS"] = $"{n.Junk}/nothing")),
        ["CNI_ARGS not K=V"] = new(4, "CNI_ARGS", n => Add(n, e => e["CNI_ARGS"] = "IgnoreUnknown")),
        ["CNI_ARGS of 70000 characters"] = new(4, "CNI_ARGS", n => Add(n, e => e["CNI_ARGS"] = "K=" + Long(70000))),
        ["CNI_PATH of 70000 characters"] = new(4, "CNI_PATH", n => Add(n, e => e["CNI_PATH"] = "/" + Long(70000))),
        ["CNI_ARGS IP not an address"] = new(4, "CNI_ARGS", n => Add(n, e => e["CNI_ARGS"] = "IP=banana")),

        // Undecodable stdin (6).
        ["empty stdin"] = new(6, "stdin", n => Add(n, stdin: "")),
        ["blank stdin"] = new(6, "stdin", n => Add(n, stdin: " \n\t")),
        ["broken JSON"] = new(6, "JSON", n => Add(n, stdin: """{"cniVersion": "1.1.0", "name": """)),
        ["truncated config"] = new(6, "JSON", n => Add(n, stdin: n.Config.ToJsonString()[..^7])),
        ["trailing garbage"] = new(6, "JSON", n => Add(n, stdin: n.Config.ToJsonString() + "}")),
        ["a JSON array"] = new(6, "object", n => Add(n, stdin: "[]")),
        ["a JSON string"] = new(6, "object", n => Add(n, stdin: "\"ipvlan\"")),
        ["nesting 200 deep"] = new(6, "JSON", n => Add(n, stdin: new string('[', 200) + new string(']', 200))),
        ["stdin over 1 MiB"] = new(6, "larger than", n => Add(n, config: c => c["padding"] = Long(CniDispatcher.MaxStdinBytes + 10))),
        // Wrong JSON types are decode failures naming the key.
        ["cniVersion a number"] = new(6, "cniVersion", n => Add(n, config: c => c["cniVersion"] = 1.1)),
        ["name a number"] = new(6, "name", n => Add(n, config: c => c["name"] = 7)),
        ["mtu a string"] = new(6, "mtu", n => Add(n, config: c => c["mtu"] = "1500")),
        ["mtu a fraction"] = new(6, "mtu", n => Add(n, config: c => c["mtu"] = 1400.5)),
        ["master an array"] = new(6, "master", n => Add(n, config: c => c["master"] = new JsonArray("ens10"))),
        ["ipam a string"] = new(6, "ipam", n => Add(n, config: c => c["ipam"] = "host-local")),
        ["linkInContainer a string"] = new(6, "linkInContainer", n => Add(n, config: c => c["linkInContainer"] = "yes")),
        ["ipam.ranges an object"] = new(6, "ranges", n => Add(n, config: c => c["ipam"]!["ranges"] = new JsonObject())),
        ["dns.nameservers a string"] = new(6, "dns.nameservers", n => Add(n, config: c => c["dns"] = new JsonObject { ["nameservers"] = "8.8.8.8" })),
        ["hostAccess address not an IP"] = new(6, "hostAccess.addresses", n => Add(n, config: c => c["hostAccess"] = new JsonObject { ["addresses"] = new JsonArray("node") })),

        // Versions (1).
        ["unknown cniVersion"] = new(1, "cniVersion", n => Add(n, config: c => c["cniVersion"] = "9.9.9")),
        ["no cniVersion"] = new(1, "cniVersion", n => Add(n, config: c => c.Remove("cniVersion"))),
        ["STATUS with 0.4.0"] = new(1, "cniVersion", n => Command(n, "STATUS", c => c["cniVersion"] = "0.4.0")),
        ["DEL with an unknown cniVersion"] = new(1, "cniVersion", n => Command(n, "DEL", c => c["cniVersion"] = "2.0.0")),

        // Invalid configuration (7: the message names the field).
        ["no name"] = new(7, "name", n => Add(n, config: c => c.Remove("name"))),
        ["name with /"] = new(7, "name", n => Add(n, config: c => c["name"] = $"a/{EscapeMarker}")),
        ["name .."] = new(7, "name", n => Add(n, config: c => c["name"] = "..")),
        ["name ../../x"] = new(7, "name", n => Add(n, config: c => c["name"] = $"../../{EscapeMarker}")),
        ["mtu above the master's"] = new(7, "mtu", n => Add(n, config: c => c["mtu"] = 9000)),
        ["mtu negative"] = new(7, "mtu", n => Add(n, config: c => c["mtu"] = -1)),
        ["mtu above 65535"] = new(7, "mtu", n => Add(n, config: c => c["mtu"] = 70000)),
        ["unknown mode"] = new(7, "mode", n => Add(n, config: c => c["mode"] = "l4")),
        ["unknown flag"] = new(7, "flag", n => Add(n, config: c => c["flag"] = "promiscuous")),
        ["unknown egress"] = new(7, "egress", n => Add(n, config: c => c["egress"] = "sideways")),
        ["no master and no default route"] = new(7, "master", n => Add(n, config: c => c.Remove("master"))),
        ["master missing"] = new(7, "master", n => Add(n, config: c => c["master"] = "nosuch0")),
        ["master with /"] = new(7, "master", n => Add(n, config: c => c["master"] = "../ens10")),
        ["stateDir relative"] = new(7, "stateDir", n => Add(n, config: c => c["stateDir"] = $"../{EscapeMarker}")),
        ["hostAccess with flag private"] = new(2, "flag", n => Add(n, config: c => { c["hostAccess"] = new JsonObject(); c["flag"] = "private"; })),
        ["hostAccess with linkInContainer"] = new(2, "linkInContainer", n => Add(n, config: c => { c["hostAccess"] = new JsonObject(); c["linkInContainer"] = true; })),
        ["no ipam and no prevResult"] = new(7, "ipam", n => Add(n, config: c => c.Remove("ipam"))),
        ["ipam type missing"] = new(7, "ipam.type", n => Add(n, config: c => c["ipam"]!.AsObject().Remove("type"))),
        ["ipam type a path"] = new(7, "ipam.type", n => Add(n, config: Ipam("type", "../../bin/sh"))),
        ["ipam type not in CNI_PATH"] = new(7, "ipam.type", n => Add(n, config: Ipam("type", "nosuch-ipam"))),
        ["subnet with host bits"] = new(7, "subnet", n => Add(n, config: Subnet("10.10.0.5/24"))),
        ["subnet prefix 33"] = new(7, "subnet", n => Add(n, config: Subnet("10.10.0.0/33"))),
        ["subnet octet 300"] = new(7, "subnet", n => Add(n, config: Subnet("10.300.0.0/16"))),
        ["subnet without prefix"] = new(7, "subnet", n => Add(n, config: Subnet("10.10.0.0"))),
        ["subnet /31"] = new(7, "subnet", n => Add(n, config: Subnet("10.10.0.0/31"))),
        ["subnet /32"] = new(7, "subnet", n => Add(n, config: Subnet("10.10.0.7/32"))),
        ["IPv6 subnet /127"] = new(7, "subnet", n => Add(n, config: Subnet("fd00::/127"))),
        ["rangeStart outside the subnet"] = new(7, "rangeStart", n => Add(n, config: Ipam("rangeStart", "10.11.0.5"))),
        ["rangeStart the network address"] = new(7, "rangeStart", n => Add(n, config: Ipam("rangeStart", "10.10.0.0"))),
        ["rangeEnd before rangeStart"] = new(7, "rangeEnd", n => Add(n, config: Ipam("rangeEnd", "10.10.0.40"))),
        ["rangeEnd the broadcast address"] = new(7, "rangeEnd", n => Add(n, config: Ipam("rangeEnd", "10.10.0.255"))),
        ["gateway of another family"] = new(7, "gateway", n => Add(n, config: Ipam("gateway", "fd00::1"))),
        ["overlapping range sets"] = new(7, "ranges", n => Add(n, config: Ranges(
            RangeSet(("10.20.0.0/24", null, null)), RangeSet(("10.20.0.0/16", "10.20.0.100", "10.20.0.200"))))),
        ["overlapping ranges in a set"] = new(7, "ranges", n => Add(n, config: Ranges(
            RangeSet(("10.20.0.0/24", "10.20.0.10", "10.20.0.100"), ("10.20.0.0/24", "10.20.0.50", "10.20.0.150"))))),
        ["mixed families in a set"] = new(7, "subnet", n => Add(n, config: Ranges(
            RangeSet(("10.20.0.0/24", null, null), ("fd00::/64", null, null))))),
        ["CHECK without prevResult"] = new(7, "prevResult", n => Command(n, "CHECK", _ => { }, BadInputNode.PrimedContainer, "eth0")),
        ["GC without valid-attachments"] = new(7, "valid-attachments", n => Command(n, "GC", _ => { })),
        ["GC valid-attachments an object"] = new(6, "valid-attachments", n => Command(n, "GC", c => c[CniDispatcher.ValidAttachmentsKey] = new JsonObject())),

        // The attachment itself (3, ours 101 and 104).
        ["CHECK of an unknown container"] = new(3, "c-bad", n => Command(n, "CHECK", c => c["prevResult"] = JsonNode.Parse(n.Primed.StdOut))),
        ["exhausted range"] = new(101, "no IP addresses available", n => Add(n)),
        ["ifname already in use"] = new(104, "eth0", n => Add(n, e => e["CNI_IFNAME"] = "eth0")),
        ["the same attachment again"] = new(104, "primed", n => Add(n, e => { e["CNI_CONTAINERID"] = BadInputNode.PrimedContainer; e["CNI_IFNAME"] = "eth0"; })),
    };

    public static TheoryData<string> CaseNames() => new(Cases.Keys);

    [Fact]
    public void The_table_has_at_least_40_requests() => Assert.True(Cases.Count >= 40, $"{Cases.Count} cases");

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Hostile_request_gets_the_right_error_and_changes_nothing(string name)
    {
        var testCase = Cases[name];
        var request = testCase.Build(fixture);

        var call = fixture.Cni.RunRaw(request.Env, request.Stdin);

        Assert.True(call.ExitCode != 0, $"{name}: exit 0: {call}");
        var error = call.Json; // the spec's error object, whatever went wrong
        Assert.True(error.TryGetProperty("cniVersion", out _), $"{name}: no cniVersion in {call.StdOut}");
        string message = call.FailedWith(testCase.Code);
        Assert.Contains(testCase.Names, message + " " + (error.TryGetProperty("details", out var d) ? d.GetString() : ""), StringComparison.OrdinalIgnoreCase);
        fixture.Snapshot().AssertSameAs(fixture.Baseline, name);
        Assert.Empty(EscapedFiles());
    }

    /// <summary>Files carrying <see cref="EscapeMarker"/> anywhere a hostile path could have led.</summary>
    static IEnumerable<string> EscapedFiles() => new[] { "/tmp", "/run", "/var/lib/cni" }.SelectMany(root =>
        Directory.EnumerateFileSystemEntries(root, $"*{EscapeMarker}*", EverythingBelow()));

    /// <summary>Recursive, dot files included (the default passes over hidden and system entries).</summary>
    static EnumerationOptions EverythingBelow()
    {
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true };
        options.AttributesToSkip &= ~(FileAttributes.Hidden | FileAttributes.System);
        return options;
    }
}
