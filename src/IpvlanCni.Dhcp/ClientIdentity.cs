using IpvlanCni.Network;
using System.Text;

namespace IpvlanCni.Dhcp;

/// <summary>
/// Who a lease belongs to: (network, container ID, interface name), and the DHCP client identifier (option 61) derived
/// from it. ipvlan slaves share the master's MAC, so the server can only tell pods apart by this identifier; it must
/// be the same on every renewal and after an agent restart, hence a pure function of the triple.
/// </summary>
public sealed class ClientIdentity
{
    public ClientIdentity(string network, string containerId, string ifName)
    {
        Network = network;
        ContainerId = containerId;
        IfName = ifName;
        // Type 0 ("not a hardware address", RFC 2132 9.14) and the first 16 bytes of a SHA-256 over the three names
        // with NUL separators (which none of them may contain): fixed length, whatever the runtime's ID length.
        var digest = Sha256.Hash(Encoding.UTF8.GetBytes($"ipvlan-cni-dhcp\0{network}\0{containerId}\0{ifName}"));
        var id = new byte[17];
        digest.AsSpan(0, 16).CopyTo(id.AsSpan(1));
        ClientId = id;
        Key = Convert.ToHexStringLower(digest.AsSpan(0, 16));
    }

    public string Network { get; }
    public string ContainerId { get; }
    public string IfName { get; }
    /// <summary>Option 61's value: 0x00 then 16 digest bytes.</summary>
    public byte[] ClientId { get; }
    /// <summary>32 hex digits, unique per identity: the lease's file name.</summary>
    public string Key { get; }

    public override string ToString() => $"{Network}/{ContainerId}/{IfName}";
}
