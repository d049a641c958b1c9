using System.Net;

namespace IpvlanCni.Explain.Tests;

/// <summary>
/// The model reads a namespace's routing (routes, neighbours, forwarding) and the plugin's NAT records only when the
/// walk needs them, which is what makes one question cheap on a node with many pods (LiveNode reads them then):
/// the answer is the same as over the whole snapshot, and only the namespaces the packets cross were read.
/// </summary>
public sealed class LazyReadingTests
{
    sealed class Counting(NodeSnapshot snapshot)
    {
        public List<string> RoutingRead { get; } = [];
        public bool MasqueradeRead { get; private set; }

        public NodeView Build() => new(snapshot.Node,
            [.. snapshot.Namespaces.Select(n => new NamespaceView(n.Id, n.Device, n.Inode, n.Links, n.Addresses, () =>
            {
                RoutingRead.Add(n.Id);
                return new RoutingSnapshot(n.ForwardingIPv4, n.ForwardingIPv6, n.Routes, n.Neighbours);
            }))],
            () =>
            {
                MasqueradeRead = true;
                return snapshot.Masquerade;
            });
    }

    static (Trace Whole, Trace Lazy, Counting Reads) Both(string name, string from, string to)
    {
        var snapshot = Replay.Load(name);
        var reads = new Counting(snapshot);
        string id = from == "node" ? snapshot.Node : $"/run/netns/{from}";
        return (Explainer.Explain(snapshot, id, IPAddress.Parse(to)), Explainer.Explain(reads.Build(), id, IPAddress.Parse(to)), reads);
    }

    [Fact]
    public void Pod_to_pod_on_one_port_reads_the_routing_of_the_two_pods_only()
    {
        var (whole, lazy, reads) = Both("l2-plain", "demo-p1", "10.100.0.11");
        Assert.Equal(Verdict.Reachable, lazy.Verdict);
        Assert.Equal(whole.ToText(), lazy.ToText());
        Assert.Equal(["/run/netns/demo-p1", "/run/netns/demo-p2"], reads.RoutingRead);
        Assert.False(reads.MasqueradeRead);
    }

    [Fact]
    public void Egress_through_the_node_reads_the_nodes_routing_and_the_nat_records()
    {
        var (whole, lazy, reads) = Both("l2-egress", "demo-p5", "192.168.3.254");
        Assert.Equal(whole.ToText(), lazy.ToText());
        Assert.Contains("node", reads.RoutingRead);
        Assert.True(reads.MasqueradeRead);
        Assert.Equal(reads.RoutingRead.Distinct().Count(), reads.RoutingRead.Count); // each namespace once
    }

    [Theory]
    [InlineData("l2-host", "node", "fd00:0:100::10")]
    [InlineData("l3-plain", "demo-p7", "192.168.3.1")]
    [InlineData("l3s-egress", "demo-p22", "192.168.3.254")]
    [InlineData("l3s-plain", "demo-p16", "10.250.2.10")]
    public void The_answer_is_the_same_as_over_the_whole_snapshot(string snapshot, string from, string to)
    {
        var (whole, lazy, reads) = Both(snapshot, from, to);
        Assert.Equal(whole.ToJson(), lazy.ToJson());
        Assert.True(reads.RoutingRead.Count < Replay.Load(snapshot).Namespaces.Count, string.Join(", ", reads.RoutingRead));
    }
}
