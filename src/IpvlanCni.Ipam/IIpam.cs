using System.Text.Json;
using IpvlanCni.Cni;

namespace IpvlanCni.Ipam;

/// <summary>Address management for one network, as the plugin's ADD/DEL/CHECK/STATUS/GC need it.</summary>
public interface IIpam
{
    /// <summary>ADD: the addresses (Interface = null), routes and DNS for the container.</summary>
    CniResult Allocate(CniRequest request);

    /// <summary>DEL: idempotent; succeeds when nothing is reserved.</summary>
    void Release(CniRequest request);

    /// <summary>CHECK: throws CniException when the reservation is missing or differs.</summary>
    void Check(CniRequest request);

    /// <summary>STATUS: throws CniException when addresses cannot be handed out.</summary>
    void Status(CniRequest request);

    /// <summary>GC: releases every reservation not in <paramref name="validAttachments"/>; tries all, reports all errors at once.</summary>
    void GarbageCollect(CniRequest request, IReadOnlyList<GcAttachment> validAttachments);
}

/// <summary>An IPAM that can set an address aside that another host on the wire answered for (ipam.probe).</summary>
public interface IConflictMarking
{
    /// <summary>
    /// Moves the attachment's reservation of <paramref name="address"/> to a conflict record (so it is not handed
    /// out again) and gives back the attachment's other addresses: the next Allocate for it starts afresh.
    /// </summary>
    void SetAside(CniRequest request, System.Net.IPAddress address);
}

public static class IpamFactory
{
    /// <summary>How long a delegated IPAM plugin may run when the configuration does not say.</summary>
    public static readonly TimeSpan DefaultDelegateTimeout = TimeSpan.FromSeconds(60);

    /// <summary>
    /// By ipam.type: "host-local", "static", "ipvlan-cni-dhcp" and "ipvlan-cni-ipam" built in, anything else executed from CNI_PATH (killed after
    /// <paramref name="delegateTimeout"/>).
    /// </summary>
    /// <param name="node">For ADD: addresses the built-in IPAMs never hand out (the plugin checks a delegate's answer).</param>
    public static IIpam Create(JsonElement ipam, CniRequest request, TimeSpan? delegateTimeout = null, NodeAddresses? node = null)
    {
        if (ipam.ValueKind != JsonValueKind.Object)
            throw IpamJson.WrongType("ipam", "an object", ipam);
        string type = IpamJson.GetString(ipam, "type", "ipam") ?? throw IpamJson.Invalid("ipam.type", "missing");
        return type switch
        {
            "host-local" => new HostLocalIpam(DiskStore.CheckDataDir(HostLocalConfig.Parse(ipam, request)), node ?? NodeAddresses.None),
            "static" => new StaticIpam(StaticConfig.Parse(ipam, request), node ?? NodeAddresses.None),
            DhcpAgentIpam.TypeName => DhcpAgentIpam.Parse(ipam),
            ClusterAgentIpam.TypeName => ClusterAgentIpam.Parse(ipam, request),
            _ => new DelegatingIpam(type, delegateTimeout ?? DefaultDelegateTimeout),
        };
    }
}
