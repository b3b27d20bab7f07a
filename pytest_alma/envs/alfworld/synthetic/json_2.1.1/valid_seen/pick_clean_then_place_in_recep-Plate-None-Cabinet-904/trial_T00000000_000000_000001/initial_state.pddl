(define (problem synthetic_904)
    (:domain alfred)
    (:objects
        agent1 - agent
        AppleType - otype
        ButterKnifeType - otype
        KnifeType - otype
        PlateType - otype
        SinkType - otype
        CabinetType - rtype
        CounterTopType - rtype
        DiningTableType - rtype
        FridgeType - rtype
        MicrowaveType - rtype
        SinkBasinType - rtype
        Plate_bar__plus_01_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 - object
        Apple_bar__plus_02_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 - object
        CounterTop_bar__plus_01_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 - receptacle
        Cabinet_bar__plus_02_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 - receptacle
        Sink_bar__plus_03_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00_bar_SinkBasin - receptacle
        Microwave_bar__plus_04_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 - receptacle
        Fridge_bar__plus_05_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 - receptacle
        DiningTable_bar__plus_06_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 - receptacle
        loc_bar_0_bar_0_bar_0_bar_0 - location
        loc_bar_1_bar_0_bar_0_bar_0 - location
        loc_bar_2_bar_0_bar_0_bar_0 - location
        loc_bar_3_bar_0_bar_0_bar_0 - location
        loc_bar_4_bar_0_bar_0_bar_0 - location
        loc_bar_5_bar_0_bar_0_bar_0 - location
        loc_bar_6_bar_0_bar_0_bar_0 - location
    )
    (:init
        (atLocation agent1 loc_bar_0_bar_0_bar_0_bar_0)
        (receptacleType CounterTop_bar__plus_01_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 CounterTopType)
        (receptacleAtLocation CounterTop_bar__plus_01_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 loc_bar_1_bar_0_bar_0_bar_0)
        (canContain CounterTopType AppleType)
        (canContain CounterTopType PlateType)
        (receptacleType Cabinet_bar__plus_02_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 CabinetType)
        (receptacleAtLocation Cabinet_bar__plus_02_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 loc_bar_2_bar_0_bar_0_bar_0)
        (openable Cabinet_bar__plus_02_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00)
        (canContain CabinetType AppleType)
        (canContain CabinetType PlateType)
        (receptacleType Sink_bar__plus_03_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00_bar_SinkBasin SinkBasinType)
        (receptacleAtLocation Sink_bar__plus_03_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00_bar_SinkBasin loc_bar_3_bar_0_bar_0_bar_0)
        (canContain SinkBasinType AppleType)
        (canContain SinkBasinType PlateType)
        (receptacleType Microwave_bar__plus_04_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 MicrowaveType)
        (receptacleAtLocation Microwave_bar__plus_04_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 loc_bar_4_bar_0_bar_0_bar_0)
        (openable Microwave_bar__plus_04_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00)
        (canContain MicrowaveType AppleType)
        (canContain MicrowaveType PlateType)
        (receptacleType Fridge_bar__plus_05_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 FridgeType)
        (receptacleAtLocation Fridge_bar__plus_05_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 loc_bar_5_bar_0_bar_0_bar_0)
        (openable Fridge_bar__plus_05_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00)
        (canContain FridgeType AppleType)
        (canContain FridgeType PlateType)
        (receptacleType DiningTable_bar__plus_06_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 DiningTableType)
        (receptacleAtLocation DiningTable_bar__plus_06_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 loc_bar_6_bar_0_bar_0_bar_0)
        (canContain DiningTableType AppleType)
        (canContain DiningTableType PlateType)
        (objectType Plate_bar__plus_01_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 PlateType)
        (inReceptacle Plate_bar__plus_01_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 DiningTable_bar__plus_06_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00)
        (objectAtLocation Plate_bar__plus_01_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 loc_bar_6_bar_0_bar_0_bar_0)
        (pickupable Plate_bar__plus_01_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00)
        (cleanable Plate_bar__plus_01_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00)
        (coolable Plate_bar__plus_01_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00)
        (objectType Apple_bar__plus_02_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 AppleType)
        (inReceptacle Apple_bar__plus_02_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 CounterTop_bar__plus_01_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00)
        (objectAtLocation Apple_bar__plus_02_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 loc_bar_1_bar_0_bar_0_bar_0)
        (pickupable Apple_bar__plus_02_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00)
        (heatable Apple_bar__plus_02_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00)
        (coolable Apple_bar__plus_02_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00)
    )
    (:goal
        (and
            (exists (?r - receptacle)
                (exists (?o - object)
                    (and
                        (cleanable ?o)
                        (objectType ?o PlateType)
                        (receptacleType ?r CabinetType)
                        (isClean ?o)
                        (inReceptacle ?o ?r))))
        )
    )
)
