using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;

namespace IpvlanCni.Kernel.Tests.Plugin;

/// <summary>Reading plugin results and the kernel/disk state they should have produced.</summary>
static class PluginKit
{
    public static readonly string[] Versions = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

    /// <summary>The result's ips[].address values.</summary>
    public static List<IpPrefix> Addresses(this CniCall added) =>
        [.. added.Json.GetProperty("ips").EnumerateArray().Select(ip => IpPrefix.Parse(ip.GetProperty("address").GetString()!))];

    public static IPAddress Address(this CniCall added, AddressFamily family = AddressFamily.InterNetwork) =>
        added.Addresses().First(a => a.Family == family).Address;

    /// <summary>Sets (or with null removes) keys of a configuration, returning it for chaining.</summary>
    public static JsonObject With(this JsonObject config, string key, JsonNode? value)
    {
        if (value is null)
            config.Remove(key);
        else
            config[key] = value;
        return config;
    }

    public static JsonObject Ipam(this JsonObject config) => config["ipam"]!.AsObject();

    /// <summary>The host-local reservation file for an address of a network.</summary>
    public static bool IsReserved(this PluginRunner cni, string network, IPAddress address) =>
        File.Exists(Path.Combine(cni.DataDir, network, address.ToString()));

    public static bool HasRecord(this PluginRunner cni, string network, string containerId, string ifName = "eth0") =>
        File.Exists(Path.Combine(cni.StateDir, "attachments", network, $"{containerId}@{ifName}"));

    /// <summary>The pod's route to a destination ("0.0.0.0/0") in the main table, if any.</summary>
    public static RouteInfo? Route(this TestPod pod, string destination) =>
        pod.Client.ListRoutes(IpPrefix.Parse(destination).Family).FirstOrDefault(r => r.Destination.Equals(IpPrefix.Parse(destination)));

    /// <summary>
    /// A TCP round trip from one pod to another: a one-shot busybox nc server in <paramref name="server"/> answers
    /// "pong" to a client in <paramref name="client"/>. True when the client read the answer.
    /// </summary>
    public static bool TcpRoundTrip(TestPod client, TestPod server, IPAddress address, int port = 5000)
    {
        string busybox = Tool("busybox");
        // Backgrounded with its output elsewhere, so starting it does not wait for it to end.
        server.Exec("/bin/sh", "-c", $"({busybox} nc -l -p {port} -e /bin/echo pong >/dev/null 2>&1 &)");
        for (int attempt = 0; attempt < 20; attempt++)
        {
            var reply = client.Exec(busybox, "nc", "-w", "2", address.ToString(), port.ToString());
            if (reply.StdOut.Trim() == "pong")
                return true;
            if (!reply.StdErr.Contains("refused", StringComparison.OrdinalIgnoreCase))
                return false;
            Thread.Sleep(50); // the server is not listening yet
        }
        return false;
    }

    /// <summary>The full path of a program, failing the test when it is not installed.</summary>
    public static string Tool(string name)
    {
        foreach (var dir in new[] { "/usr/sbin", "/usr/bin", "/sbin", "/bin" })
            if (File.Exists(Path.Combine(dir, name)))
                return Path.Combine(dir, name);
        throw new FileNotFoundException($"{name} is not installed; run make deps");
    }
}

/// <summary>
/// Everything an ADD could leave behind, as comparable lines: the node's links, addresses and routes (kind, names,
/// prefixes; not counters or DAD flags), each pod's, the files under the node's state and IPAM folders with their
/// contents, and the node's NAT table. Two snapshots differ exactly where something was left.
/// </summary>
sealed class Snapshot
{
    public List<string> Lines { get; } = [];

    public static Snapshot Take(PluginRunner cni, params TestPod[] pods)
    {
        var snapshot = new Snapshot();
        snapshot.AddNamespace("node", cni.Node.Client);
        foreach (var pod in pods)
            snapshot.AddNamespace(pod.Name, pod.Client);
        foreach (string root in new[] { cni.StateDir, cni.DataDir })
        {
            if (!Directory.Exists(root))
                continue;
            foreach (string file in Directory.GetFiles(root, "*", SearchOption.AllDirectories).Order())
            {
                // The allocation cursor moves on purpose (the reference host-local never rewinds it either), and the
                // empty flock targets are created by the first call and hold no state.
                if (Path.GetFileName(file).StartsWith("last_reserved_ip.", StringComparison.Ordinal) || Path.GetFileName(file) == "lock")
                    continue;
                snapshot.Lines.Add($"file {file}: {File.ReadAllText(file).ReplaceLineEndings("\\n")}");
            }
        }
        var save = NamespaceProcess.Run(cni.Node.Namespace, PluginKit.Tool("iptables-legacy-save"), ["-t", "nat"]);
        snapshot.Lines.AddRange(save.StdOut.Split('\n').Where(l => l.Length > 0 && !l.StartsWith('#')).Select(l => $"nat {l}"));
        return snapshot;
    }

    void AddNamespace(string name, RouteClient client)
    {
        var links = client.ListLinks();
        string LinkName(int index) => links.FirstOrDefault(l => l.Index == index)?.Name ?? index.ToString();
        foreach (var link in links.OrderBy(l => l.Name))
            Lines.Add($"{name} link {link.Name} {link.Kind} parent={LinkName(link.ParentIndex)} up={link.IsUp} mtu={link.Mtu} mode={link.IpvlanMode} flag={link.IpvlanFlag} vlan={link.VlanId}");
        foreach (var address in client.ListAddresses().OrderBy(a => a.Prefix.ToString()))
            Lines.Add($"{name} address {address.Prefix} dev {LinkName(address.LinkIndex)}");
        foreach (var route in client.ListRoutes().OrderBy(r => r.Destination.ToString()))
            Lines.Add($"{name} route {route.Destination} via {route.Gateway} dev {LinkName(route.LinkIndex)} scope {route.Scope}");
        foreach (var neighbour in client.ListNeighbours().Where(n => n.State.HasFlag(NeighbourState.Permanent)))
            Lines.Add($"{name} neighbour {neighbour.Address} dev {LinkName(neighbour.LinkIndex)}");
    }

    /// <summary>Asserts nothing was added or removed, listing the difference.</summary>
    public void AssertSameAs(Snapshot before, string because)
    {
        var added = Lines.Except(before.Lines).ToList();
        var removed = before.Lines.Except(Lines).ToList();
        Assert.True(added.Count == 0 && removed.Count == 0,
            $"{because}: left behind:\n  {string.Join("\n  ", added)}\nremoved:\n  {string.Join("\n  ", removed)}");
    }
}
