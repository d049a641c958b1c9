using System.Net;
using System.Text.Json;
using IpvlanCni.Cni;
using IpvlanCni.Network;

namespace IpvlanCni.Ipam;

/// <summary>The reference static plugin's keys: addresses, routes, dns, and the address overrides.</summary>
public sealed record StaticConfig
{
    public required IReadOnlyList<CniIpConfig> Addresses { get; init; }
    public IReadOnlyList<CniRoute> Routes { get; init; } = [];
    public CniDns Dns { get; init; } = new();

    /// <summary>
    /// ipam.addresses, unless overridden: CNI_ARGS IP=cidr[,cidr] appends (GATEWAY=ip[,ip] sets the gateway of the
    /// addresses whose subnet contains it); args.cni.ips, then runtimeConfig.ips, replace the whole list.
    /// </summary>
    public static StaticConfig Parse(JsonElement ipam, CniRequest request)
    {
        const string p = "ipam";
        var addresses = new List<CniIpConfig>();
        int i = 0;
        foreach (var a in IpamJson.GetArray(ipam, "addresses", p))
        {
            string ap = $"{p}.addresses[{i++}]";
            if (a.ValueKind != JsonValueKind.Object)
                throw IpamJson.WrongType(ap, "an object", a);
            var text = IpamJson.GetString(a, "address", ap) ?? throw IpamJson.Invalid($"{ap}.address", "missing");
            var gw = IpamJson.GetString(a, "gateway", ap);
            addresses.Add(Address(text, $"{ap}.address", gw is null ? null : IpamJson.ParseIp(gw, $"{ap}.gateway")));
        }

        foreach (var v in IpamJson.ArgValues(request, "IP"))
            addresses.Add(Address(v, "CNI_ARGS IP", null));
        foreach (var g in IpamJson.ArgValues(request, "GATEWAY"))
        {
            var gw = IpamJson.ParseIp(g, "CNI_ARGS GATEWAY");
            for (int k = 0; k < addresses.Count; k++)
                if (addresses[k].Address.Network.Contains(gw))
                    addresses[k] = addresses[k] with { Gateway = gw };
        }

        var root = request.Root.Element;
        if (IpamJson.GetObject(root, "args", "") is { } args && IpamJson.GetObject(args, "cni", "args") is { } cniArgs &&
            IpamJson.GetStrings(cniArgs, "ips", "args.cni") is { Count: > 0 } argIps)
            addresses = argIps.Select((s, k) => Address(s, $"args.cni.ips[{k}]", null)).ToList();
        if (IpamJson.GetObject(root, "runtimeConfig", "") is { } rc && IpamJson.GetStrings(rc, "ips", "runtimeConfig") is { Count: > 0 } rcIps)
            addresses = rcIps.Select((s, k) => Address(s, $"runtimeConfig.ips[{k}]", null)).ToList();

        return new StaticConfig
        {
            Addresses = addresses,
            Routes = IpamJson.ParseRoutes(ipam, p),
            Dns = IpamJson.GetObject(ipam, "dns", p) is { } dns ? CniResultJson.ReadDns(new CniConfigReader(dns, $"{p}.dns")) : new CniDns(),
        };
    }

    static CniIpConfig Address(string cidr, string path, IPAddress? gateway) =>
        new(IpamJson.ParseCidr(cidr.Trim(), path)) { Gateway = gateway };
}

/// <summary>Fixed addresses from the config: nothing is stored, so DEL and GC have nothing to do.</summary>
public sealed class StaticIpam(StaticConfig config, NodeAddresses node) : IIpam
{
    public StaticIpam(StaticConfig config) : this(config, NodeAddresses.None)
    {
    }

    public StaticConfig Config { get; } = config;

    public CniResult Allocate(CniRequest request) => new()
    {
        Ips = [.. Config.Addresses.Select(a => node.Holds(a.Address.Address) ? throw node.Refusal(a.Address.Address, "ipam.addresses") : a)],
        Routes = [.. Config.Routes],
        Dns = Config.Dns with { Nameservers = [.. Config.Dns.Nameservers], Search = [.. Config.Dns.Search], Options = [.. Config.Dns.Options] },
    };

    public void Release(CniRequest request) { }

    /// <summary>As the reference: each configured address found in prevResult must carry the configured gateway.</summary>
    public void Check(CniRequest request)
    {
        var prev = request.Config.PrevResult ?? throw new CniException(CniErrorCode.InvalidNetworkConfig, "Required prevResult missing");
        foreach (var a in Config.Addresses)
            foreach (var ip in prev.Ips.Where(ip => ip.Address.Address.Equals(a.Address.Address)))
                if (a.Gateway is not null && !a.Gateway.Equals(ip.Gateway))
                    throw new CniException(CniErrorCode.Internal,
                        $"static: Failed to match addr {IpMath.Format(a.Address.Address)} on interface {request.IfName}");
    }

    public void Status(CniRequest request) { }

    public void GarbageCollect(CniRequest request, IReadOnlyList<GcAttachment> validAttachments) { }
}
