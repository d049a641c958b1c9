// ipvlan-cni-agent: the node agent (DHCP leases, cluster IPAM on etcd) and the operator's `ipam` subcommands, which
// talk to etcd in process. `ipvlan-cni agent ...` and `ipvlan-cni ipam ...` exec this with the same arguments.
IpvlanCni.Interop.Libc.UseSingleMallocArena();
return args switch
{
    ["ipam", ..] => IpvlanCni.ClusterIpam.IpamCommand.Run(args.AsSpan(1)),
    ["agent", ..] => IpvlanCni.Agent.AgentMain.Run(args.AsSpan(1), IpvlanCni.ClusterIpam.ClusterIpamService.Create),
    _ => IpvlanCni.Agent.AgentMain.Run(args, IpvlanCni.ClusterIpam.ClusterIpamService.Create),
};
