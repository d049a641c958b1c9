using System.Net;
using IpvlanCni.Network;

namespace IpvlanCni.Cni;

/// <summary>The canonical (1.1.0) result. Older shapes are produced from it by the version converter.</summary>
public sealed record CniResult
{
    public string CniVersion { get; init; } = CniVersions.Latest;
    public List<CniInterface> Interfaces { get; init; } = [];
    public List<CniIpConfig> Ips { get; init; } = [];
    public List<CniRoute> Routes { get; init; } = [];
    public CniDns Dns { get; init; } = new();
}

public sealed record CniInterface(string Name)
{
    public string? Mac { get; init; }
    public int? Mtu { get; init; }
    /// <summary>The netns path for a container-side interface; null for a host interface.</summary>
    public string? Sandbox { get; init; }
    public string? SocketPath { get; init; }
    public string? PciId { get; init; }
}

public sealed record CniIpConfig(IpPrefix Address)
{
    public IPAddress? Gateway { get; init; }
    /// <summary>Index into Interfaces; null when the IP is not tied to one (IPAM results).</summary>
    public int? Interface { get; init; }
}

public sealed record CniRoute(IpPrefix Destination)
{
    public IPAddress? Gateway { get; init; }
    // 1.1.0 additions
    public int? Mtu { get; init; }
    public int? AdvMss { get; init; }
    public int? Priority { get; init; }
    public int? Table { get; init; }
    public int? Scope { get; init; }
}

public sealed record CniDns
{
    public List<string> Nameservers { get; init; } = [];
    public string? Domain { get; init; }
    public List<string> Search { get; init; } = [];
    public List<string> Options { get; init; } = [];
    public bool IsEmpty => Nameservers.Count == 0 && Domain is null && Search.Count == 0 && Options.Count == 0;
}

public static class CniVersions
{
    public const string Latest = "1.1.0";
    public static readonly IReadOnlyList<string> Supported = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

    public static bool IsSupported(string? version) => version is not null && Supported.Contains(version);

    /// <summary>Orders two supported versions; both must be in <see cref="Supported"/> (index order is version order).</summary>
    public static int Compare(string a, string b) => IndexOf(a).CompareTo(IndexOf(b));

    /// <summary>True when a supported version is at least <paramref name="minimum"/> (CHECK needs 0.4.0, STATUS/GC 1.1.0).</summary>
    public static bool AtLeast(string version, string minimum) => Compare(version, minimum) >= 0;

    /// <summary>0.3.x and 0.4.0 share one result shape: ips carry "version", interfaces have no mtu.</summary>
    public static bool IsPre100(string version) => Compare(version, "1.0.0") < 0;

    static int IndexOf(string version)
    {
        for (int i = 0; i < Supported.Count; i++)
            if (Supported[i] == version)
                return i;
        throw new ArgumentException($"CNI version '{version}' is not supported", nameof(version));
    }
}
