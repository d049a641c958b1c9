using System.Text.Json.Nodes;
using IpvlanCni.Scenarios;

namespace IpvlanCni.Kernel.Tests.Support;

/// <summary>
/// The runtime of a <see cref="TestNode"/>: Scenarios' <see cref="CniRuntime"/> (the published plugin, called exactly
/// as a container runtime calls it, in the node's namespace) plus this node's own state and IPAM folders, so tests
/// sharing one sandbox boot never share plugin state.
/// <code>
/// var cni = new PluginRunner(node);
/// var config = cni.Config("net1", "10.10.0.0/24");          // ipvlan-cni, l2, host-local, this node's folders
/// var added = cni.Add(config, pod, "c1").Succeeded();       // CniCall with .Json, .ErrorCode
/// cni.Del(config, pod, "c1").Succeeded();
/// </code>
/// </summary>
public sealed class PluginRunner(TestNode node) : CniRuntime(node.Namespace)
{
    public TestNode Node { get; } = node;
    public string StateDir => $"/tmp/{Node.Name}/state";
    public string DataDir => $"/tmp/{Node.Name}/ipam";
    /// <summary>The plugin's node-wide registry (lock, masters, users) for this node's namespace, whatever stateDir says.</summary>
    public string NodeStateDir => _nodeStateDir ??= NodeStateDirOf(Node.Namespace);
    string? _nodeStateDir;

    public static string NodeStateDirOf(IpvlanCni.Network.NetNamespace ns) =>
        "/run/ipvlan-cni/" + ns.Run(IpvlanCni.Plugin.StateStore.NodeFolderName);

    /// <summary>An ipvlan-cni network with host-local IPAM and a default route, in this node's folders; edit freely.</summary>
    public JsonObject Config(string network, string subnet, string mode = "l2", string cniVersion = "1.1.0") => new()
    {
        ["cniVersion"] = cniVersion,
        ["name"] = network,
        ["type"] = "ipvlan-cni",
        ["master"] = Node.MasterName,
        ["mode"] = mode,
        ["stateDir"] = StateDir,
        ["ipam"] = new JsonObject
        {
            ["type"] = "host-local",
            ["subnet"] = subnet,
            ["dataDir"] = DataDir,
            ["routes"] = new JsonArray(new JsonObject { ["dst"] = subnet.Contains(':') ? "::/0" : "0.0.0.0/0" }),
        },
    };
}
