using System.Text.Json.Nodes;
using IpvlanCni.Kernel.Tests.Support;

namespace IpvlanCni.Kernel.Tests.Reliability;

/// <summary>What attachments leave in the plugin's folders: reservations, records, temporaries. Empty once all are gone.</summary>
static class Residue
{
    /// <summary>Records, reservations and temporaries under the state and IPAM folders (<see cref="SnapshotFolders.PluginState"/>).</summary>
    public static List<string> Files(PluginRunner cni) => NodeSnapshot.ListFolders(SnapshotFolders.PluginState(cni.StateDir, cni.DataDir, cni.NodeStateDir));

    /// <summary>The pod's links other than lo: what DEL must remove.</summary>
    public static List<string> PodLinks(TestPod pod) => [.. pod.Client.ListLinks().Where(l => l.Name != "lo").Select(l => $"{l.Name} ({l.Kind})")];

    /// <summary>A network with every host-side step: host access (host-side slave, node address, pod routes) and NAT.</summary>
    public static JsonObject FullConfig(PluginRunner cni, string network, string subnet = "10.10.0.0/24")
    {
        var config = cni.Config(network, subnet);
        config["hostAccess"] = new JsonObject { ["addresses"] = new JsonArray("10.10.0.1") };
        config["ipMasq"] = true;
        return config;
    }
}
