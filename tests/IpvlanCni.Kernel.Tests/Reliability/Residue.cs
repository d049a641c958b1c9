using System.Text.Json.Nodes;
using IpvlanCni.Kernel.Tests.Support;

namespace IpvlanCni.Kernel.Tests.Reliability;

/// <summary>What attachments leave in the plugin's folders: reservations, records, temporaries. Empty once all are gone.</summary>
static class Residue
{
    /// <summary>
    /// Every file under the state and IPAM folders except the lock files and host-local's last_reserved_ip.N (which the
    /// reference keeps after DEL too): records, reservations and temporaries.
    /// </summary>
    public static List<string> Files(PluginRunner cni) =>
        [.. new[] { cni.StateDir, cni.DataDir }
            .Where(Directory.Exists)
            .SelectMany(dir => Directory.EnumerateFileSystemEntries(dir, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
            .Where(path => !Directory.Exists(path) || new FileInfo(path).LinkTarget is not null)
            .Where(path => Path.GetFileName(path) != "lock" && !Path.GetFileName(path).StartsWith("last_reserved_ip.", StringComparison.Ordinal))];

    /// <summary>The node's links, addresses, routes, neighbours and NAT rules, without the folders.</summary>
    public static NodeSnapshot Network(TestNode node) => NodeSnapshot.Take(node);

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
