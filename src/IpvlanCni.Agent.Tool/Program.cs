// `ipvlan-cni agent ...` execs this executable with the arguments after "agent".
return IpvlanCni.Agent.AgentMain.Run(args);
