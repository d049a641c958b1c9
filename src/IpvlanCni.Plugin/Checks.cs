using System.Net.Sockets;
using IpvlanCni.Cni;
using IpvlanCni.Network;

namespace IpvlanCni.Plugin;

/// <summary>CHECK: what the kernel has must still be what ADD made.</summary>
static class Checks
{
    public static void Attachment(PluginConfig config, CniRequest request, AttachmentRecord record, MasterRecord? masterRecord,
        CniResult previous, RouteClient host, RouteClient pod)
    {
        var expected = previous.Interfaces.FirstOrDefault(i => i.Name == request.IfName && i.Sandbox == request.NetnsPath)
            ?? throw Failed($"prevResult has no interface \"{request.IfName}\" in sandbox \"{request.NetnsPath}\"");
        var master = host.TryGetLink(record.Master) ?? throw Failed($"master \"{record.Master}\" does not exist");
        var link = pod.TryGetLink(request.IfName) ?? throw Failed($"interface \"{request.IfName}\" does not exist in {request.NetnsPath}");
        if (link.Kind != "ipvlan")
            throw Failed($"interface \"{request.IfName}\" is {link.Kind ?? "not a virtual link"}, not ipvlan");
        if (link.IpvlanMode != config.Mode)
            throw Failed($"interface \"{request.IfName}\" runs ipvlan mode {Describe(link.IpvlanMode)}, the configuration says {Masters.Describe(config.Mode)}");
        if (link.IpvlanFlag != config.Flag)
            throw Failed($"interface \"{request.IfName}\" has ipvlan flag {(link.IpvlanFlag is { } f ? Masters.Describe(f) : "none")}, the configuration says {Masters.Describe(config.Flag)}");
        if (link.ParentIndex != master.Index)
            throw Failed($"interface \"{request.IfName}\" is not a slave of master \"{master.Name}\"");
        // Without "mtu" the slave has the master's: ipvlan gives slaves the master's MTU, also when it changes.
        int expectedMtu = config.Mtu != 0 ? config.Mtu : master.Mtu;
        if (link.Mtu != expectedMtu)
            throw Failed($"interface \"{request.IfName}\" has MTU {link.Mtu}, expected {expectedMtu} ({(config.Mtu != 0 ? "the configuration's" : $"master \"{master.Name}\"'s")})");
        if (expected.Mac is { Length: > 0 } mac && !string.Equals(mac, link.MacAddress.ToColonString(), StringComparison.OrdinalIgnoreCase))
            throw Failed($"interface \"{request.IfName}\" has MAC {link.MacAddress.ToColonString()}, prevResult says {mac}");

        var addresses = pod.ListAddresses(AddressFamily.Unspecified, link.Index).Select(a => a.Prefix).ToHashSet();
        foreach (var ip in previous.Ips)
            if (!addresses.Contains(ip.Address))
                throw Failed($"interface \"{request.IfName}\" lacks address {ip.Address} from prevResult");

        var routes = pod.ListRoutes();
        foreach (var route in PodInterface.Routes(config, previous, link.Index))
            if (!routes.Any(r => r.Destination.Equals(route.Destination) && Equals(r.Gateway, route.Gateway) && r.LinkIndex == link.Index))
                throw Failed($"the route to {route.Destination}{(route.Gateway is null ? "" : $" via {route.Gateway}")} from prevResult is missing");

        if (record.HostInterface is { } hostInterface)
        {
            var hostLink = host.TryGetLink(hostInterface) ?? throw Failed($"host-side interface \"{hostInterface}\" does not exist");
            var hostRoutes = host.ListRoutes();
            foreach (var podAddress in record.Addresses.Select(IpPrefix.Parse))
            {
                var route = HostSide.PodRoute(hostLink.Index, podAddress);
                if (!hostRoutes.Any(r => r.Destination.Equals(route.Destination) && r.LinkIndex == hostLink.Index))
                    throw Failed($"the node's route to pod address {podAddress.Address} via \"{hostInterface}\" is missing");
            }
            HostAddresses(record, masterRecord, hostLink, host, link, pod);
        }
    }

    /// <summary>The node addresses of this pod's families sit on the host-side slave, and the pod routes them over eth0.</summary>
    static void HostAddresses(AttachmentRecord record, MasterRecord? master, LinkInfo hostLink, RouteClient host, LinkInfo podLink, RouteClient pod)
    {
        var families = record.Addresses.Select(a => IpPrefix.Parse(a).Family).ToHashSet();
        var expected = (master?.HostAddresses ?? []).Select(IpPrefix.Parse).Where(a => families.Contains(a.Family)).ToList();
        var onSlave = host.ListAddresses(AddressFamily.Unspecified, hostLink.Index).Select(a => a.Prefix).ToHashSet();
        var podRoutes = pod.ListRoutes();
        foreach (var address in expected)
        {
            if (!onSlave.Contains(address))
                throw Failed($"node address {address} is missing from host-side interface \"{hostLink.Name}\"");
            if (!podRoutes.Any(r => r.Destination.Equals(address) && r.LinkIndex == podLink.Index))
                throw Failed($"the pod's route to node address {address.Address} over \"{podLink.Name}\" is missing");
        }
    }

    static string Describe(IpvlanMode? mode) => mode is { } m ? Masters.Describe(m) : "none";

    static CniException Failed(string message) => new(CniErrorCode.CheckFailed, message);
}
