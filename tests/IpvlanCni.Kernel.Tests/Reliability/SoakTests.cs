using System.Text.Json.Nodes;
using System.Text;
using IpvlanCni.Cni;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Plugin;
using IpvlanCni.Scenarios;

namespace IpvlanCni.Kernel.Tests.Reliability;

/// <summary>
/// ADD/DEL cycles with nothing growing: host links, routes, addresses, NAT rules, store files, and the plugin's own
/// file descriptors. The plugin is a short-lived process, so to see its descriptors the cycles run the same code in
/// this process: CniDispatcher.Run with an IpvlanPlugin on a thread inside the node namespace, as PluginMain would.
/// Every cycle has host access (host-side slave, node address, pod route); every 25th also ADDs and DELs a second
/// attachment (net1) on a network with ipMasq (each NAT change starts iptables processes, seconds per cycle on one UML CPU).
/// `make test` runs 100 cycles; `make soak` runs IPVLANCNI_SOAK_CYCLES=1000.
/// </summary>
public class SoakTests : KernelTest
{
    public const string CyclesVariable = "IPVLANCNI_SOAK_CYCLES";
    /// <summary>ADD/DEL cycles: 100 in `make test`, IPVLANCNI_SOAK_CYCLES (1000 in `make soak`) otherwise.</summary>
    static int Cycles => int.TryParse(Environment.GetEnvironmentVariable(CyclesVariable), out int n) && n > 0 ? n : 100;

    /// <summary>Cycles before the first count: the runtime opens some descriptors lazily (first netlink socket, first child process).</summary>
    const int WarmUp = 5;

    static void Dispatch(TestNode node, string command, JsonNode config, TestPod pod, string containerId, string ifName = "eth0")
    {
        var env = CniRuntime.Environment(command, containerId, pod.Path, ifName);
        using var stdin = new MemoryStream(Encoding.UTF8.GetBytes(config.ToJsonString()));
        using var stdout = new MemoryStream();
        int exit = node.Namespace.Run(() => CniDispatcher.Run(new IpvlanPlugin(), env, stdin, stdout));
        Assert.True(exit == 0, $"{command} {containerId}: {Encoding.UTF8.GetString(stdout.ToArray())}");
    }

    static int OpenDescriptors() => Directory.GetFileSystemEntries("/proc/self/fd").Length;

    [Fact]
    public void Add_del_cycles_in_one_process_grow_nothing()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = Residue.FullConfig(cni, "soak");
        config.Remove("ipMasq");
        // Its own subnet and no routes, so that the pod's second link adds no second default route.
        var natConfig = Residue.FullConfig(cni, "soaknat", "10.20.0.0/24");
        natConfig.Remove("hostAccess");
        natConfig["ipam"]!.AsObject().Remove("routes");
        var pod = node.AddPod();
        void Cycle(string id, bool withNat)
        {
            Dispatch(node, "ADD", config, pod, id);
            if (withNat)
                Dispatch(node, "ADD", natConfig, pod, id, "net1");
            Dispatch(node, "DEL", config, pod, id);
            if (withNat)
                Dispatch(node, "DEL", natConfig, pod, id, "net1");
        }
        for (int i = 0; i < WarmUp; i++)
            Cycle($"w{i}", withNat: true);
        // last_reserved_ip.0 moves on with every ADD, as in the reference; nothing else may differ.
        var folders = new SnapshotFolders(cni.StateDir, cni.DataDir) { IgnoredNames = ["last_reserved_ip.*"] };
        var before = NodeSnapshot.Take(node, folders);
        int descriptors = OpenDescriptors();

        for (int i = 0; i < Cycles; i++)
        {
            Cycle($"s{i}", withNat: i % 25 == 0);
            // Between calls the plugin holds nothing open: a lock or store file still open now leaked (until a GC).
            var open = OpenFiles().Where(t => t.StartsWith(cni.StateDir + "/", StringComparison.Ordinal) || t.StartsWith(cni.DataDir + "/", StringComparison.Ordinal)).ToList();
            Assert.True(open.Count == 0, $"cycle {i}: still open: {string.Join(", ", open)}");
        }

        int leaked = OpenDescriptors() - descriptors;
        Assert.True(leaked <= 0, $"{leaked} more open descriptors after {Cycles} cycles: {string.Join(", ", Descriptors())}");
        NodeSnapshot.Take(node, folders).AssertSameAs(before, $"{Cycles} ADD/DEL cycles");
        Assert.Empty(Residue.Files(cni));
        Assert.Empty(Residue.PodLinks(pod));
    }

    /// <summary>What each open descriptor points at (a descriptor closed while we look reads as "?").</summary>
    static List<string> OpenFiles() => [.. Directory.GetFileSystemEntries("/proc/self/fd").Select(fd =>
    {
        try
        {
            return new FileInfo(fd).LinkTarget ?? "?";
        }
        catch (IOException)
        {
            return "?";
        }
    })];

    static IEnumerable<string> Descriptors() => OpenFiles().GroupBy(t => t.Split(':')[0]).Select(g => $"{g.Key} x{g.Count()}");
}
