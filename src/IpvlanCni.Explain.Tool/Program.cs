// `ipvlan-cni explain ...` execs this executable with the arguments after "explain".
return IpvlanCni.Explain.ExplainCommand.Run(args);
