using System.Net;
using IpvlanCni.Cni;
using IpvlanCni.Network;

namespace IpvlanCni.Ipam;

/// <summary>
/// The addresses configured on the node's interfaces (and, with linkInContainer, on those of the master's namespace):
/// never a pod's. The kernel lets a slave hold its node's address, and the slave then captures the node's inbound
/// traffic for it, so every IPAM skips these and a requested one is refused.
/// </summary>
public sealed class NodeAddresses
{
    readonly Dictionary<IPAddress, (RouteClient Client, int LinkIndex)> _held = [];

    public static readonly NodeAddresses None = new();

    /// <summary>One address dump per namespace: the whole cost on the ADD path.</summary>
    public static NodeAddresses Read(params RouteClient[] namespaces)
    {
        var node = new NodeAddresses();
        foreach (var client in namespaces)
            foreach (var address in client.ListAddresses())
                node._held.TryAdd(IpMath.Canonical(address.Prefix.Address), (client, address.LinkIndex));
        return node;
    }

    public bool Holds(IPAddress address) => _held.ContainsKey(IpMath.Canonical(address));

    /// <summary>Code 7 naming the address and the interface that holds it (looked up only now, on refusal).</summary>
    public CniException Refusal(IPAddress address, string field)
    {
        string where = _held.TryGetValue(IpMath.Canonical(address), out var holder)
            ? holder.Client.TryGetLink(holder.LinkIndex) is { } link ? $"on \"{link.Name}\"" : $"on interface {holder.LinkIndex}"
            : "";
        return new CniException(CniErrorCode.InvalidNetworkConfig,
            $"{field}: {IpMath.Format(address)} is an address of the node ({where}); a pod holding it would capture the node's traffic for it");
    }
}
