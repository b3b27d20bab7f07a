(define (problem synthetic_903)
    (:domain alfred)
    (:objects
        agent1 - agent
        BookType - otype
        ButterKnifeType - otype
        CellPhoneType - otype
        DeskLampType - otype
        KnifeType - otype
        PenType - otype
        SinkType - otype
        BedType - rtype
        DeskType - rtype
        DrawerType - rtype
        FridgeType - rtype
        MicrowaveType - rtype
        SideTableType - rtype
        SinkBasinType - rtype
        Book_bar__plus_01_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 - object
        Pen_bar__plus_02_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 - object
        CellPhone_bar__plus_03_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 - object
        DeskLamp_bar__plus_04_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 - object
        Bed_bar__plus_01_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 - receptacle
        Desk_bar__plus_02_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 - receptacle
        Drawer_bar__plus_03_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 - receptacle
        SideTable_bar__plus_04_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 - receptacle
        loc_bar_0_bar_0_bar_0_bar_0 - location
        loc_bar_1_bar_0_bar_0_bar_0 - location
        loc_bar_2_bar_0_bar_0_bar_0 - location
        loc_bar_3_bar_0_bar_0_bar_0 - location
        loc_bar_4_bar_0_bar_0_bar_0 - location
    )
    (:init
        (atLocation agent1 loc_bar_0_bar_0_bar_0_bar_0)
        (receptacleType Bed_bar__plus_01_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 BedType)
        (receptacleAtLocation Bed_bar__plus_01_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 loc_bar_1_bar_0_bar_0_bar_0)
        (canContain BedType BookType)
        (canContain BedType CellPhoneType)
        (canContain BedType DeskLampType)
        (canContain BedType PenType)
        (receptacleType Desk_bar__plus_02_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 DeskType)
        (receptacleAtLocation Desk_bar__plus_02_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 loc_bar_2_bar_0_bar_0_bar_0)
        (canContain DeskType BookType)
        (canContain DeskType CellPhoneType)
        (canContain DeskType DeskLampType)
        (canContain DeskType PenType)
        (receptacleType Drawer_bar__plus_03_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 DrawerType)
        (receptacleAtLocation Drawer_bar__plus_03_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 loc_bar_3_bar_0_bar_0_bar_0)
        (openable Drawer_bar__plus_03_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00)
        (canContain DrawerType BookType)
        (canContain DrawerType CellPhoneType)
        (canContain DrawerType DeskLampType)
        (canContain DrawerType PenType)
        (receptacleType SideTable_bar__plus_04_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 SideTableType)
        (receptacleAtLocation SideTable_bar__plus_04_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 loc_bar_4_bar_0_bar_0_bar_0)
        (canContain SideTableType BookType)
        (canContain SideTableType CellPhoneType)
        (canContain SideTableType DeskLampType)
        (canContain SideTableType PenType)
        (objectType Book_bar__plus_01_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 BookType)
        (inReceptacle Book_bar__plus_01_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 Bed_bar__plus_01_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00)
        (objectAtLocation Book_bar__plus_01_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 loc_bar_1_bar_0_bar_0_bar_0)
        (pickupable Book_bar__plus_01_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00)
        (objectType Pen_bar__plus_02_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 PenType)
        (inReceptacle Pen_bar__plus_02_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 Desk_bar__plus_02_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00)
        (objectAtLocation Pen_bar__plus_02_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 loc_bar_2_bar_0_bar_0_bar_0)
        (pickupable Pen_bar__plus_02_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00)
        (objectType CellPhone_bar__plus_03_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 CellPhoneType)
        (inReceptacle CellPhone_bar__plus_03_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 Drawer_bar__plus_03_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00)
        (objectAtLocation CellPhone_bar__plus_03_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 loc_bar_3_bar_0_bar_0_bar_0)
        (pickupable CellPhone_bar__plus_03_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00)
        (objectType DeskLamp_bar__plus_04_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 DeskLampType)
        (inReceptacle DeskLamp_bar__plus_04_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 SideTable_bar__plus_04_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00)
        (objectAtLocation DeskLamp_bar__plus_04_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00 loc_bar_4_bar_0_bar_0_bar_0)
        (toggleable DeskLamp_bar__plus_04_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00)
    )
    (:goal
        (and
            (exists (?ot - object ?r - receptacle ?a - agent ?l - location)
                (and
                    (objectType ?ot DeskLampType)
                    (toggleable ?ot)
                    (isToggled ?ot)
                    (receptacleAtLocation ?r ?l)
                    (atLocation ?a ?l)
                    (inReceptacle ?ot ?r)))
            (exists (?o - object ?a - agent)
                (and
                    (objectType ?o BookType)
                    (holds ?a ?o)))
        )
    )
)
