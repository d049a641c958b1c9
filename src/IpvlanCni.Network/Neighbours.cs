using System.Net;
using System.Net.NetworkInformation;

namespace IpvlanCni.Network;

/// <summary>NUD_* states.</summary>
[Flags]
public enum NeighbourState : ushort { None = 0, Incomplete = 0x01, Reachable = 0x02, Stale = 0x04, Delay = 0x08, Probe = 0x10, Failed = 0x20, NoArp = 0x40, Permanent = 0x80 }

public sealed record NeighbourInfo(int LinkIndex, IPAddress Address, PhysicalAddress MacAddress)
{
    public NeighbourState State { get; init; } = NeighbourState.Permanent;
}
