using System.Net;
using System.Net.Sockets;
using IpvlanCni.Network;

namespace IpvlanCni.Explain;

/// <summary>
/// The model's entry: an ICMP echo round trip from a namespace of the snapshot to an address, walked through
/// <see cref="Datapath"/>, with the cause and the fix when it does not come back. Pure: reads only the snapshot.
/// <code>
/// var trace = Explainer.Explain(snapshot, from: "/run/netns/pod1", to: IPAddress.Parse("192.168.3.1"));
/// Console.Write(trace.ToText());   // trace.Verdict: Reachable / Unreachable / Unknown
/// </code>
/// </summary>
public static class Explainer
{
    /// <param name="from">A namespace's <see cref="NamespaceSnapshot.Id"/> (the snapshot's Node for the node).</param>
    public static Trace Explain(NodeSnapshot snapshot, string from, IPAddress to) => Explain(snapshot.ToView(), from, to);

    /// <summary>The same over a node whose routing is read as the walk needs it (the live node, <see cref="LiveNode"/>).</summary>
    public static Trace Explain(NodeView node, string from, IPAddress to)
    {
        var topology = new Topology(node);
        var source = topology.Find(from) ?? throw new ArgumentException($"namespace {from} is not in the snapshot", nameof(from));
        var datapath = new Datapath(topology);
        var request = datapath.Send(source, new Packet(null, to, IsReply: false));
        var requestHops = datapath.Hops;
        datapath.Hops = [];
        var outcome = request;
        IPAddress? origin = null;
        if (request is Arrived arrived)
        {
            origin = datapath.FirstSource;
            outcome = datapath.Send(arrived.Ns, new Packet(to, arrived.Packet.Source!, IsReply: true));
            if (outcome is Arrived back && (back.Ns != source || !back.Packet.Destination.Equals(origin)))
                outcome = new Lost(Loss.Dropped, $"the reply is delivered to {back.Ns}, not to {source}.");
        }
        var (verdict, cause) = outcome switch
        {
            Arrived => (Verdict.Reachable, (string?)null),
            Lost lost when datapath.Exit is { } exit && lost.Short is { } said =>
                (Verdict.Unreachable, $"{exit.What} to {exit.Destination} leaves the node through {exit.Link.Name} and is lost in {exit.Peer}, {said}."),
            Lost lost => (Verdict.Unreachable, lost.Cause),
            Unsure unsure => (Verdict.Unknown, unsure.Cause),
            _ => (Verdict.Unknown, "the model ended without an outcome."),
        };
        string? fix = outcome is Lost l ? Advice.Fix(topology, source, to, l, datapath.VepaHairpin) : null;
        return new Trace(DescribeSource(source, to.AddressFamily), DescribeDestination(topology, to), verdict, requestHops, datapath.Hops,
            cause is null ? null : Capitalise(cause), fix);
    }

    static string Capitalise(string text) => text.Length == 0 ? text : char.ToUpperInvariant(text[0]) + text[1..];

    static string DescribeSource(Ns ns, AddressFamily family)
    {
        if (ns.IsNode)
            return "node";
        var slave = ns.Links.Values.FirstOrDefault(l => l.Port is not null && l.Up);
        if (slave is null)
            return $"namespace {ns}";
        var addresses = slave.AddressesOf(family).Where(a => !a.Prefix.Address.IsIPv6LinkLocal).Select(a => $" {a.Prefix}");
        return $"pod {ns} ({slave.Name}{string.Join(",", addresses)}, {slave.Port!.ModeName} slave of {slave.Port.Master.Name})";
    }

    static string DescribeDestination(Topology topology, IPAddress to)
    {
        if (topology.Holder(to) is not { } holder)
            return $"{to} (not on this node)";
        if (holder.Ns.IsNode)
            return $"{to} (the node's, on {holder.Link.Name})";
        return holder.Link.Port is { } port ? $"{to} (pod {holder.Ns}, {holder.Link.Name}, {port.ModeName} slave of {port.Master.Name})"
            : $"{to} (namespace {holder.Ns}, {holder.Link.Name})";
    }
}

/// <summary>The configuration that fixes a lost echo, from what kind of path it was.</summary>
static class Advice
{
    const string HostAccess = "\"hostAccess\": {}";
    const string Egress = "\"egress\": \"host\", \"ipMasq\": true";

    public static string? Fix(Topology topology, Ns source, IPAddress to, Lost lost, bool vepaHairpin)
    {
        var slave = source.Links.Values.FirstOrDefault(l => l.Port is not null && l.Up);
        var holder = topology.Holder(to);
        if (lost.Kind == Loss.Private)
            return "\"flag\": \"bridge\" (a private port forbids traffic between its slaves)";
        if (vepaHairpin)
            return "\"flag\": \"bridge\", or a switch port that reflects frames back (802.1Qbg reflective relay) for vepa";
        bool toNode = holder is { Ns.IsNode: true };
        bool toPod = holder is { } h && h.Link.Port is not null && !h.Ns.IsNode;
        if (slave is { } podLink && toNode)
            return HostAccessFor(topology, podLink.Port!, to);
        if (source.IsNode && toPod)
            return HostAccessFor(topology, holder!.Value.Link.Port!, null);
        if (slave is { } pod && toPod && holder!.Value.Link.Port == pod.Port)
            return pod.Port!.Mode == IpvlanMode.L2
                ? "l2 pods in different subnets need a router on the business network between them; l3 or l3s routes between subnets of one master"
                : null;
        bool outside = holder is null || (!holder.Value.Ns.IsNode && holder.Value.Link.Port is null);
        if (slave is { } egressing && outside && BehindNode(topology, egressing.Port!, to))
        {
            var port = egressing.Port!;
            if (port.Mode != IpvlanMode.L2 && to.AddressFamily == AddressFamily.InterNetwork)
                return $"put pods that need networks behind the node in l2 with {Egress} (l3/l3s IPv4 only ever leaves through the master)";
            return port.Flag == IpvlanFlag.Bridge ? Egress : $"\"flag\": \"bridge\", {Egress}";
        }
        return null;
    }

    static string HostAccessFor(Topology topology, Port port, IPAddress? nodeAddress)
    {
        string access = nodeAddress is null || nodeAddress.Equals(PrimaryAddress(topology.Node, nodeAddress.AddressFamily))
            ? HostAccess : $"\"hostAccess\": {{\"addresses\": [\"{nodeAddress}\"]}}";
        return port.Flag == IpvlanFlag.Bridge ? access : $"\"flag\": \"bridge\", {access}";
    }

    // The node reaches this address through a link that is not the pod's master (nor its VLAN parent).
    static bool BehindNode(Topology topology, Port port, IPAddress to)
    {
        var route = topology.Node.Routes
            .Where(r => r.Type == 1 && r.Destination.Family == to.AddressFamily && r.Destination.Contains(to) && r.Link is not null)
            .OrderByDescending(r => r.Destination.PrefixLength).ThenBy(r => r.Metric).FirstOrDefault();
        return route is not null && route.Link != port.Master && route.Link != port.Master.Lower;
    }

    /// <summary>The node's primary address: the source of its default route (what "hostAccess": {} gives pods).</summary>
    static IPAddress? PrimaryAddress(Ns node, AddressFamily family)
    {
        var route = node.Routes.Where(r => r.Type == 1 && r.Destination.Family == family && r.Destination.PrefixLength == 0)
            .OrderBy(r => r.Metric).FirstOrDefault();
        if (route is null)
            return null;
        return route.PreferredSource ?? node.Addresses
            .FirstOrDefault(a => a.Link == route.Link && a.Prefix.Family == family && !a.Prefix.Address.IsIPv6LinkLocal)?.Prefix.Address;
    }
}
