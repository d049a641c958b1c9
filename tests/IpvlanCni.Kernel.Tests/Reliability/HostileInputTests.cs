using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;
using IpvlanCni.Scenarios;

namespace IpvlanCni.Kernel.Tests.Reliability;

/// <summary>
/// A node for the security table: network "hostile" with every host-side step (host-side slave, NAT) and one pod
/// "primed"; in that pod a dummy link no DEL may touch; FIFOs, symlinks, a big file and a hanging IPAM plugin to aim
/// requests at; and a second network "side" whose ADDs run alongside each hostile request and must not wait on it.
/// </summary>
public sealed class HostileNode : IDisposable
{
    public const string Network = "hostile";

    public HostileNode()
    {
        Node = new TestNode();
        Cni = new PluginRunner(Node);
        Pod = Node.AddPod();
        SidePod = Node.AddPod();
        Config = Residue.FullConfig(Cni, Network);
        SideConfig = Cni.Config("side", "10.10.1.0/24");
        // Reading the nat tables first, as every snapshot does, puts the node on the backend the suite compares.
        NodeSnapshot.Take(Node);
        Primed = Cni.Add(Config, Pod, "primed").Succeeded();
        Pod.Client.CreateLink(new DummyLinkSpec("dummy9"));
        // Someone else's ipvlan slave of the master in the node's own namespace: a DEL without a record leaves it.
        Node.Client.CreateLink(new IpvlanLinkSpec("foreign0", Node.Master.Index, IpvlanMode.L2));

        Junk = $"/tmp/{Node.Name}-junk";
        Directory.CreateDirectory($"{Junk}/dir");
        Directory.CreateDirectory($"{Junk}/bin");
        File.WriteAllText(RegularFile, "nameserver 10.10.0.53\n");
        File.WriteAllText(BigFile, new string('#', 70 * 1024));
        Run("mkfifo", Fifo);
        File.CreateSymbolicLink(FileLink, RegularFile);
        File.CreateSymbolicLink(FifoLink, Fifo);
        File.CreateSymbolicLink(DirLink, $"{Junk}/dir");
        // A host-local store whose lock someone replaced by a symlink (to a file the plugin must never flock or create).
        Directory.CreateDirectory($"{LockedData}/{Network}");
        File.CreateSymbolicLink($"{LockedData}/{Network}/lock", RegularFile);
        // An IPAM plugin whose ADD never answers (the deadline must kill it); its DEL, the rollback's, succeeds.
        File.WriteAllText(HangingIpam, "#!/bin/sh\n[ \"$CNI_COMMAND\" = ADD ] && exec sleep 600\nexit 0\n");
        File.SetUnixFileMode(HangingIpam, (UnixFileMode)0b111_101_101);
        // The side network's folders exist from here on, as they do after any first ADD.
        Cni.Add(SideConfig, SidePod, "warmup").Succeeded();
        Cni.Del(SideConfig, SidePod, "warmup").Succeeded();
        Baseline = Snapshot();
    }

    public TestNode Node { get; }
    public PluginRunner Cni { get; }
    public TestPod Pod { get; }
    public TestPod SidePod { get; }
    public JsonObject Config { get; }
    public JsonObject SideConfig { get; }
    public CniCall Primed { get; }
    public string Junk { get; }
    public string RegularFile => $"{Junk}/file";
    public string BigFile => $"{Junk}/big";
    public string Fifo => $"{Junk}/fifo";
    public string FileLink => $"{Junk}/file-link";
    public string FifoLink => $"{Junk}/fifo-link";
    public string DirLink => $"{Junk}/dir-link";
    public string HangingIpam => $"{Junk}/bin/hang-ipam";
    public string LockedData => $"{Junk}/locked-data";
    /// <summary>Another network's folders, outside everything the snapshot compares (a DEL of it may create them).</summary>
    public string Elsewhere => $"/tmp/{Node.Name}-elsewhere";
    public NodeSnapshot Baseline { get; }
    int _side;

    public NodeSnapshot Snapshot() => NodeSnapshot.Take(Node.Namespace,
        new SnapshotFolders($"/tmp/{Node.Name}", Cni.NodeStateDir, Junk) { IgnoredNames = ["last_reserved_ip.*"] }, Pod.Namespace, SidePod.Namespace);

    public string NextSideContainer() => $"side{Interlocked.Increment(ref _side)}";

    static void Run(string program, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(program, args) { UseShellExecute = false })!;
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
    }

    public void Dispose()
    {
        Directory.Delete(Junk, recursive: true);
        if (Directory.Exists(Elsewhere))
            Directory.Delete(Elsewhere, recursive: true);
        Node.Dispose();
    }
}

/// <summary>
/// Issue 9's attacks as requests through the published binary. Each gets the spec's error JSON with a typed code
/// (never 999, never a .NET resource key) and a message naming the field, returns within seconds, leaves the node
/// exactly as it was (files, links of node and pods, addresses, routes, neighbours, NAT), and does not hold up an
/// ADD of another container started at the same moment. DELs that must delete nothing succeed and change nothing.
/// </summary>
public class HostileInputTests(HostileNode fixture) : KernelTest, IClassFixture<HostileNode>
{
    static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);

    sealed record Request(Dictionary<string, string> Env, string Stdin);

    /// <param name="Code">The error code, or 0 for a DEL that must succeed without touching anything.</param>
    sealed record Case(int Code, string Names, Func<HostileNode, Request> Build);

    static Request Build(HostileNode n, string command = "ADD", Action<Dictionary<string, string>>? env = null, Action<JsonObject>? config = null,
        string containerId = "c-hostile", string ifName = "eth1")
    {
        var environment = CniRuntime.Environment(command, containerId, n.Pod.Path, ifName);
        env?.Invoke(environment);
        var json = (JsonObject)n.Config.DeepClone();
        config?.Invoke(json);
        return new Request(environment, json.ToJsonString());
    }

    static Request Add(HostileNode n, Action<Dictionary<string, string>>? env = null, Action<JsonObject>? config = null) => Build(n, env: env, config: config);
    static Request Del(HostileNode n, string ifName, Action<Dictionary<string, string>>? env = null, Action<JsonObject>? config = null) =>
        Build(n, "DEL", env, config, "unknown", ifName);

    static Action<JsonObject> Key(string key, JsonNode? value) => c => c[key] = value;
    static Action<JsonObject> IpamKey(string key, JsonNode? value) => c => c["ipam"]![key] = value;

    /// <summary>Chained after a plugin whose prevResult names the master: no master key, no ipam.</summary>
    static Action<JsonObject> ChainedWithInterface(string name) => c =>
    {
        c.Remove("master");
        c.Remove("ipam");
        c.Remove("hostAccess");
        c.Remove("ipMasq");
        c["prevResult"] = new JsonObject
        {
            ["cniVersion"] = "1.1.0",
            ["interfaces"] = new JsonArray(new JsonObject { ["name"] = name }),
            ["ips"] = new JsonArray(new JsonObject { ["address"] = "10.10.0.77/24", ["interface"] = 0 }),
        };
    };

    static readonly Dictionary<string, Case> Cases = new()
    {
        // CNI_NETNS is the runtime's: opened O_PATH and typed before anything, never waited on (4).
        ["netns a FIFO"] = new(4, "CNI_NETNS", n => Add(n, e => e["CNI_NETNS"] = n.Fifo)),
        ["netns a symlink to a FIFO"] = new(4, "CNI_NETNS", n => Add(n, e => e["CNI_NETNS"] = n.FifoLink)),
        ["netns /dev/zero"] = new(4, "CNI_NETNS", n => Add(n, e => e["CNI_NETNS"] = "/dev/zero")),
        ["netns a relative path"] = new(4, "CNI_NETNS", n => Add(n, e => e["CNI_NETNS"] = "run/netns/x")),
        ["netns a pid namespace"] = new(4, "CNI_NETNS", n => Add(n, e => e["CNI_NETNS"] = "/proc/self/ns/pid")),
        ["CHECK with netns a FIFO"] = new(4, "CNI_NETNS", n => Build(n, "CHECK", e => e["CNI_NETNS"] = n.Fifo,
            c => c["prevResult"] = JsonNode.Parse(n.Primed.StdOut), "primed", "eth0")),
        ["container ID with ~ (the hash marker)"] = new(4, "CNI_CONTAINERID", n => Add(n, e => e["CNI_CONTAINERID"] = "a~b")),

        // The log path from the environment (4) and from the configuration (7): absolute, a regular file or absent.
        ["IPVLAN_CNI_LOG relative"] = new(4, "IPVLAN_CNI_LOG", n => Add(n, e => e["IPVLAN_CNI_LOG"] = "ipvlan.log")),
        ["IPVLAN_CNI_LOG a symlink"] = new(4, "IPVLAN_CNI_LOG", n => Add(n, e => e["IPVLAN_CNI_LOG"] = n.FileLink)),
        ["IPVLAN_CNI_LOG a FIFO"] = new(4, "IPVLAN_CNI_LOG", n => Add(n, e => e["IPVLAN_CNI_LOG"] = n.Fifo)),
        ["IPVLAN_CNI_LOG a directory"] = new(4, "IPVLAN_CNI_LOG", n => Add(n, e => e["IPVLAN_CNI_LOG"] = $"{n.Junk}/dir")),
        ["logFile a FIFO"] = new(7, "logFile", n => Add(n, config: Key("logFile", n.Fifo))),
        ["logFile a symlink"] = new(7, "logFile", n => Add(n, config: Key("logFile", n.FileLink))),
        ["logFile a symlink to a FIFO"] = new(7, "logFile", n => Add(n, config: Key("logFile", n.FifoLink))),
        ["logFile a directory"] = new(7, "logFile", n => Add(n, config: Key("logFile", $"{n.Junk}/dir"))),
        ["logFile a device"] = new(7, "logFile", n => Add(n, config: Key("logFile", "/dev/null"))),
        ["logFile relative"] = new(7, "logFile", n => Add(n, config: Key("logFile", "ipvlan.log"))),

        // Files a configuration names: regular, at most 64 KiB, opened without blocking.
        ["resolvConf a FIFO"] = new(7, "resolvConf", n => Add(n, config: IpamKey("resolvConf", n.Fifo))),
        ["resolvConf a symlink to a FIFO"] = new(7, "resolvConf", n => Add(n, config: IpamKey("resolvConf", n.FifoLink))),
        ["resolvConf /dev/zero"] = new(7, "resolvConf", n => Add(n, config: IpamKey("resolvConf", "/dev/zero"))),
        ["resolvConf a directory"] = new(7, "resolvConf", n => Add(n, config: IpamKey("resolvConf", $"{n.Junk}/dir"))),
        ["resolvConf over 64 KiB"] = new(7, "larger than", n => Add(n, config: IpamKey("resolvConf", n.BigFile))),
        ["resolvConf missing"] = new(5, "resolvConf", n => Add(n, config: IpamKey("resolvConf", $"{n.Junk}/nothing"))),

        // stateDir and dataDir: absolute, no symlink or file in the part the plugin creates or writes through (7).
        ["stateDir a symlink"] = new(7, "stateDir", n => Add(n, config: Key("stateDir", n.DirLink))),
        ["stateDir a symlink with a trailing /"] = new(7, "stateDir", n => Add(n, config: Key("stateDir", n.DirLink + "/"))),
        ["stateDir a file"] = new(7, "stateDir", n => Add(n, config: Key("stateDir", n.RegularFile))),
        ["stateDir below a file"] = new(7, "stateDir", n => Add(n, config: Key("stateDir", $"{n.RegularFile}/state"))),
        ["stateDir a FIFO"] = new(7, "stateDir", n => Add(n, config: Key("stateDir", n.Fifo))),
        ["stateDir with .."] = new(7, "stateDir", n => Add(n, config: Key("stateDir", $"{n.Junk}/dir/../dir"))),
        ["stateDir of 5000 characters"] = new(7, "stateDir", n => Add(n, config: Key("stateDir", $"{n.Junk}/" + new string('s', 5000)))),
        ["DEL with stateDir a symlink"] = new(7, "stateDir", n => Del(n, "eth0", config: Key("stateDir", n.DirLink))),
        ["GC with stateDir a symlink"] = new(7, "stateDir", n => Build(n, "GC", config: c =>
        {
            c["stateDir"] = n.DirLink;
            c["cni.dev/valid-attachments"] = new JsonArray();
        })),
        ["dataDir a symlink"] = new(7, "dataDir", n => Add(n, config: IpamKey("dataDir", n.DirLink))),
        ["dataDir a file"] = new(7, "dataDir", n => Add(n, config: IpamKey("dataDir", n.RegularFile))),
        ["dataDir with .."] = new(7, "dataDir", n => Add(n, config: IpamKey("dataDir", $"{n.Junk}/dir/.."))),

        // Interface names from configuration and from a chained plugin's prevResult: the kernel's rules, never a path.
        ["prevResult interface an absolute path"] = new(7, "prevResult.interfaces", n => Add(n, config: ChainedWithInterface($"{n.RegularFile}"))),
        ["prevResult interface ../../x"] = new(7, "prevResult.interfaces", n => Add(n, config: ChainedWithInterface("../../victim"))),
        ["prevResult interface .."] = new(7, "prevResult.interfaces", n => Add(n, config: ChainedWithInterface(".."))),
        ["prevResult interface of 16 bytes"] = new(7, "prevResult.interfaces", n => Add(n, config: ChainedWithInterface(new string('e', 16)))),
        ["prevResult interface with a space"] = new(7, "prevResult.interfaces", n => Add(n, config: ChainedWithInterface("ens 10"))),
        ["master an absolute path"] = new(7, "master", n => Add(n, config: Key("master", "/etc/passwd"))),
        ["master of 16 bytes"] = new(7, "master", n => Add(n, config: Key("master", new string('m', 16)))),
        ["master with a newline"] = new(7, "master", n => Add(n, config: Key("master", "ens10\nx"))),
        // "eth%d" is a kernel name template: the pod would get eth0 while the record says eth%d, and a DEL that cannot
        // find it would free its address for another pod.
        ["CNI_IFNAME a name template"] = new(4, "CNI_IFNAME", n => Add(n, e => e["CNI_IFNAME"] = "eth%d")),
        ["hostAccess.interface a path"] = new(7, "hostAccess.interface", n => Add(n, config: c => c["hostAccess"]!["interface"] = "../../lo")),

        // Deadlines: configuration with bounds, and a child that never answers is killed (102).
        ["delegated IPAM that hangs"] = new(102, "did not finish", n => Add(n,
            e => e["CNI_PATH"] = $"{Path.GetDirectoryName(n.HangingIpam)}:{CniRuntime.CniPath}",
            c => { c["ipam"]!["type"] = "hang-ipam"; c["timeouts"] = new JsonObject { ["ipam"] = 1 }; })),
        ["timeouts.lock zero"] = new(7, "timeouts.lock", n => Add(n, config: Key("timeouts", new JsonObject { ["lock"] = 0 }))),
        ["timeouts.ipam a string"] = new(6, "timeouts.ipam", n => Add(n, config: Key("timeouts", new JsonObject { ["ipam"] = "60" }))),

        // DEL without a record deletes no link that is not an ipvlan slave of the master, nor another attachment's.
        ["DEL without a record naming a dummy link"] = new(0, "", n => Del(n, "dummy9")),
        ["DEL without a record naming lo"] = new(0, "", n => Del(n, "lo")),
        ["DEL without a record naming another attachment's link"] = new(0, "", n => Del(n, "eth0")),
        ["DEL without a record, master unset, naming another attachment's link"] = new(0, "", n => Del(n, "eth0", config: c => c.Remove("master"))),
        ["DEL with netns a FIFO"] = new(0, "", n => Del(n, "eth0", e => e["CNI_NETNS"] = n.Fifo)),
        // The same pod's link seen from another network under another stateDir: the node-wide claims protect it.
        ["DEL without a record of another network and stateDir naming a claimed link"] = new(0, "", n => Del(n, "eth0", config: c =>
        {
            c["name"] = "elsewhere";
            c["stateDir"] = $"{n.Elsewhere}/state";
            c["ipam"]!["dataDir"] = $"{n.Elsewhere}/ipam";
        })),
        // A runtime that names the node's own namespace: our port and host-side links are no pod's.
        ["DEL with the node's namespace naming our port link"] = new(0, "", n => Del(n, $"ipvlp{n.Node.Master.Index}",
            e => e["CNI_NETNS"] = n.Node.Namespace.Path)),
        ["DEL with the node's namespace naming our host-side link"] = new(0, "", n => Del(n, $"ipvlh{n.Node.Master.Index}",
            e => e["CNI_NETNS"] = n.Node.Namespace.Path)),
        ["DEL without a record with the node's namespace naming another ipvlan slave of the master"] = new(0, "", n => Del(n, "foreign0",
            e => e["CNI_NETNS"] = n.Node.Namespace.Path)),
        // Bytes that are not UTF-8 all decode to U+FFFD: two different names would become one link and one record.
        ["CNI_IFNAME not UTF-8"] = new(4, "CNI_IFNAME", n => Add(n, e => e["CNI_IFNAME"] = "a\uFFFD")),
        ["ADD with the node's namespace and a port link's name"] = new(4, "CNI_IFNAME", n => Build(n, env: e =>
        {
            e["CNI_NETNS"] = n.Node.Namespace.Path;
            e["CNI_IFNAME"] = $"ipvlp{n.Node.Master.Index + 1}";
        })),
        // The host-local store's lock planted as a symlink: ADD is refused naming the key; a DEL of nothing succeeds.
        ["dataDir whose lock is a symlink"] = new(7, "dataDir", n => Add(n, config: IpamKey("dataDir", n.LockedData))),
        ["DEL with dataDir whose lock is a symlink"] = new(0, "", n => Del(n, "eth1", config: IpamKey("dataDir", n.LockedData))),
    };

    public static TheoryData<string> CaseNames() => new(Cases.Keys);

    [Fact]
    public void The_table_has_at_least_40_requests() => Assert.True(Cases.Count >= 40, $"{Cases.Count} cases");

    /// <summary>"IO_PathTooLong_Path", "Arg_OutOfMemoryException": what UseSystemResourceKeys leaves of a .NET message.</summary>
    static readonly Regex ResourceKey = new(@"\b(IO|Arg|Argument|InvalidOperation|UnauthorizedAccess|Net|Format|Overflow)_[A-Za-z]+\b");

    [Theory]
    [MemberData(nameof(CaseNames))]
    public async Task Hostile_request_is_refused_promptly_changes_nothing_and_blocks_no_other_add(string name)
    {
        var testCase = Cases[name];
        var request = testCase.Build(fixture);
        string side = fixture.NextSideContainer();

        var clock = Stopwatch.StartNew();
        var hostile = Task.Run(() => Programs.Run(fixture.Node.Namespace, CniRuntime.PluginPath, [], request.Env, request.Stdin,
            inheritEnvironment: false, timeout: TimeSpan.FromSeconds(30)));
        var other = Task.Run(() =>
        {
            var started = Stopwatch.StartNew();
            var call = fixture.Cni.Add(fixture.SideConfig, fixture.SidePod, side);
            return (call, started.Elapsed);
        });
        var (sideCall, sideTime) = await other;
        var result = await hostile;
        var hostileTime = clock.Elapsed;
        var call = new CniCall(result.ExitCode, result.StdOut, result.StdErr);

        sideCall.Succeeded($"the concurrent ADD of {side}");
        Assert.True(sideTime < Prompt, $"{name}: the concurrent ADD took {sideTime}");
        Assert.True(hostileTime < Prompt, $"{name}: took {hostileTime}");
        fixture.Cni.Del(fixture.SideConfig, fixture.SidePod, side).Succeeded($"DEL {side}");

        if (testCase.Code == 0)
            call.Succeeded(name);
        else
        {
            Assert.True(call.ExitCode != 0, $"{name}: exit 0: {call}");
            Assert.True(call.Json.TryGetProperty("cniVersion", out _), $"{name}: no cniVersion in {call.StdOut}");
            string message = call.FailedWith(testCase.Code);
            string details = call.Json.TryGetProperty("details", out var d) ? d.GetString() ?? "" : "";
            Assert.Contains(testCase.Names, message + " " + details, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotMatch(ResourceKey, message + " " + details);
        }
        fixture.Snapshot().AssertSameAs(fixture.Baseline, name);
    }
}
